import Handlebars from 'handlebars';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkTemplate, DEFAULT_TEMPLATES_DIR, TemplateError, TemplateSet } from '../../src/boot/render.js';
import { commandLines, expectWellFormedIpxe, ipxeStructureProblems } from './ipxe-structure.js';

const shipped = TemplateSet.fromDirectory(DEFAULT_TEMPLATES_DIR);

const MAC = '52:54:00:aa:bb:cc';
const BASE = 'http://192.0.2.1:8080';
const common = { mac: MAC, baseUrl: BASE, selfUrl: `${BASE}/boot/${MAC}.ipxe`, retrySeconds: 10 };

function sanbootContext(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...common,
    hostname: 'worker-1',
    initiatorIqn: 'iqn.2024-01.io.hiveboot:worker-1',
    targetIqn: 'iqn.2003-01.org.linux-iscsi.gw:worker-1',
    lun: 0,
    uris: ['iscsi:192.0.2.10::3260:0:iqn.2003-01.org.linux-iscsi.gw:worker-1'],
    username: 'worker-1-user',
    password: 'secret-123456',
    reverseUsername: null,
    reversePassword: null,
    efiFilename: null,
    kernelArgs: '',
    labels: {},
    params: {},
    ...overrides,
  };
}

/** A context that every shipped template can render with. */
const contexts: Record<string, Record<string, unknown>> = {
  bootstrap: { baseUrl: BASE, retrySeconds: 10 },
  discovery: common,
  exit: common,
  wait: { ...common, state: 'pending', reason: 'pending, waiting for a disk' },
  sanboot: sanbootContext(),
};

/** One template that prints `value` through `helper`. */
function one(helper: string, value: unknown): string {
  return TemplateSet.fromSources({ t: `#!ipxe\necho {{${helper} value}}\n` }).render('t', { value });
}

describe('shipped templates', () => {
  it('all load from boot-templates/ and include the five the daemon needs', () => {
    const files = readdirSync(DEFAULT_TEMPLATES_DIR).filter((f) => f.endsWith('.ipxe.hbs'));
    expect(shipped.names()).toEqual(files.map((f) => f.slice(0, -'.ipxe.hbs'.length)).sort());
    expect(shipped.names()).toEqual(expect.arrayContaining(['bootstrap', 'discovery', 'exit', 'sanboot', 'wait']));
  });

  it.each(Object.keys(contexts))('%s renders a script that starts with #!ipxe and only uses known commands', (name) => {
    const script = shipped.render(name, contexts[name]!);
    expect(script.split('\n')[0]).toBe('#!ipxe');
    expectWellFormedIpxe(script);
  });

  it('every shipped template has a test context (a new template must be covered here)', () => {
    expect(Object.keys(contexts).sort()).toEqual(shipped.names());
  });

  it('sanboot prints the values it is given, on the lines iPXE reads them from', () => {
    const lines = commandLines(shipped.render('sanboot', sanbootContext()));
    expect(lines).toContain('set initiator-iqn iqn.2024-01.io.hiveboot:worker-1');
    expect(lines).toContain('set username worker-1-user');
    expect(lines).toContain('set password secret-123456');
    expect(lines).toContain('sanboot iscsi:192.0.2.10::3260:0:iqn.2003-01.org.linux-iscsi.gw:worker-1 || goto failed');
    expect(lines).toContain(`chain --autofree --replace ${BASE}/boot/${MAC}.ipxe`);
  });

  it('bootstrap chains to the per-MAC script on the base URL and retries', () => {
    const script = shipped.render('bootstrap', contexts.bootstrap!);
    expect(script).toContain(`chain --autofree --replace ${BASE}/boot/\${net0/mac}.ipxe?`);
    expect(commandLines(script)).toEqual(expect.arrayContaining(['sleep 10', 'goto start']));
  });

  it('a shipped template fed a hostile value refuses to render rather than print it', () => {
    expect(() => shipped.render('sanboot', sanbootContext({ hostname: 'w1\nshell' }))).toThrow(TemplateError);
    expect(() => shipped.render('sanboot', sanbootContext({ username: 'u ${net0/ip}' }))).toThrow(TemplateError);
    expect(() => shipped.render('sanboot', sanbootContext({ uris: ['iscsi:a::3260:0:t', 'x || shell'] }))).toThrow(TemplateError);
    expect(() => shipped.render('bootstrap', { baseUrl: `${BASE}\nshell`, retrySeconds: 10 })).toThrow(TemplateError);
    expect(() => shipped.render('wait', { ...contexts.wait, reason: 'x\nshell' })).toThrow(TemplateError);
  });

  it('a missing field in a shipped template context is an error, not an empty word', () => {
    const { hostname: _hostname, ...withoutHostname } = sanbootContext();
    expect(() => shipped.render('sanboot', withoutHostname)).toThrow(TemplateError);
    const { retrySeconds: _retry, ...withoutRetry } = contexts.bootstrap!;
    expect(() => shipped.render('bootstrap', withoutRetry)).toThrow(TemplateError);
  });
});

describe('the structural checker used by these tests', () => {
  it('accepts the shape of a normal script', () => {
    expect(ipxeStructureProblems('#!ipxe\n# c\n:start\nchain x || goto start\nimgfree a ||\n')).toEqual([]);
  });

  it('catches an injected command, a missing shebang and a bad label', () => {
    expect(ipxeStructureProblems('#!ipxe\necho hi\nshell\n')).toHaveLength(1);
    expect(ipxeStructureProblems('#!ipxe\nchain x || shell\n')).toHaveLength(1);
    expect(ipxeStructureProblems('#!ipxe\necho x && login\n')).toHaveLength(1);
    expect(ipxeStructureProblems('echo hi\n')).toHaveLength(1);
    expect(ipxeStructureProblems('#!ipxe\n:bad label\n')).toHaveLength(1);
  });
});

describe('TemplateSet.render', () => {
  it('refuses a template whose output does not start with #!ipxe', () => {
    const set = TemplateSet.fromSources({ plain: 'echo hello\n', late: '\n#!ipxe\necho hello\n' });
    expect(() => set.render('plain', {})).toThrow(/does not start with #!ipxe/);
    expect(() => set.render('late', {})).toThrow(TemplateError);
  });

  it('refuses an unknown template name', () => {
    expect(() => shipped.render('nope', {})).toThrow(/no template "nope"/);
    expect(shipped.has('nope')).toBe(false);
    expect(shipped.has('sanboot')).toBe(true);
  });

  it('strict mode: a misspelt field throws a TemplateError instead of printing nothing', () => {
    const set = TemplateSet.fromSources({ t: '#!ipxe\nset username {{v usernme}}\n' });
    expect(() => set.render('t', { username: 'worker-1-user' })).toThrow(TemplateError);
  });

  it('strict mode: a misspelt parent object is a TemplateError too (the service then answers with a wait script)', () => {
    const set = TemplateSet.fromSources({ t: '#!ipxe\necho {{v dsk.lun}}\n' });
    expect(() => set.render('t', { disk: { lun: 0 } })).toThrow(TemplateError);
  });

  it('does not read inherited properties of the context', () => {
    const set = TemplateSet.fromSources({ t: '#!ipxe\necho {{v constructor}}\n' });
    expect(() => set.render('t', {})).toThrow(TemplateError);
  });

  it('prints a finite number, refuses null, NaN, objects and arrays', () => {
    expect(one('v', 3260)).toBe('#!ipxe\necho 3260\n');
    for (const bad of [null, Number.NaN, Number.POSITIVE_INFINITY, { toString: () => 'x' }, ['a'], true]) {
      expect(() => one('v', bad)).toThrow(TemplateError);
    }
  });
});

describe('checkTemplate and loading', () => {
  it('accepts a template that prints only through the safe helpers', () => {
    expect(() =>
      checkTemplate('ok', '#!ipxe\n{{#if a}}set a {{v a}}{{/if}}\n{{#each xs}} {{v this}}{{/each}}\necho {{args k}} {{efipath e}}\n'),
    ).not.toThrow();
  });

  it.each([
    ['double-stash', '#!ipxe\necho hi\n{{hostname}}\n', 3, 'hostname'],
    ['triple-stash', '#!ipxe\n# comment\n\nset x {{{hostname}}}\n', 4, 'hostname'],
    ['this inside each', '#!ipxe\nsanboot{{#each uris}}\n {{this}}{{/each}}\n', 3, 'this'],
    ['an unknown helper', '#!ipxe\necho {{upper hostname}}\n', 2, 'upper'],
    ['a built-in helper that prints', '#!ipxe\necho {{lookup . "hostname"}}\n', 2, 'lookup'],
    ['a safe helper with two values', '#!ipxe\necho {{v a b}}\n', 2, 'v'],
    ['a safe helper with no value', '#!ipxe\necho {{v}}\n', 2, 'v'],
    ['a @data variable', '#!ipxe\n{{#each xs}}\necho {{@key}}{{/each}}\n', 3, '@key'],
  ])('refuses %s at load, naming the template and the line', (_what, source, line, printed) => {
    let error: unknown;
    try {
      TemplateSet.fromSources({ custom: source });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TemplateError);
    const message = (error as Error).message;
    expect(message).toContain('custom.ipxe.hbs');
    expect(message).toContain(`line ${line}:`);
    expect(message).toContain(`{{${printed}`);
  });

  it('reports every unsafe place, not only the first', () => {
    expect(() => checkTemplate('two', '#!ipxe\n{{a}}\n{{b}}\n')).toThrow(/line 2:.*line 3:/);
  });

  it.each([
    ['a partial', '#!ipxe\n{{> common}}\n'],
    ['a partial block', '#!ipxe\n{{#> layout}}x{{/layout}}\n'],
    ['an inline partial', '#!ipxe\n{{#*inline "p"}}x{{/inline}}\n'],
    ['a decorator', '#!ipxe\n{{*decorate}}\n'],
  ])('refuses %s at load', (_what, source) => {
    expect(() => TemplateSet.fromSources({ p: source })).toThrow(/p\.ipxe\.hbs: line 2: partials and decorators are not supported/);
  });

  it('refuses an unknown block helper at load, not on the first boot request', () => {
    expect(() => TemplateSet.fromSources({ blk: '#!ipxe\n{{#iff x}}echo x{{/iff}}\n' })).toThrow(TemplateError);
    expect(() => TemplateSet.fromSources({ blk: '#!ipxe\n{{#iff x}}echo x{{/iff}}\n' })).toThrow(/blk\.ipxe\.hbs/);
  });

  it('a syntax error names the template it is in', () => {
    expect(() => TemplateSet.fromSources({ broken: '#!ipxe\n{{#if x}}\necho\n' })).toThrow(TemplateError);
    expect(() => TemplateSet.fromSources({ broken: '#!ipxe\n{{#if x}}\necho\n' })).toThrow(/broken\.ipxe\.hbs/);
  });

  it('one bad template among good ones stops the whole set from loading', () => {
    expect(() => TemplateSet.fromSources({ good: '#!ipxe\necho {{v a}}\n', bad: '#!ipxe\necho {{a}}\n' })).toThrow(/bad\.ipxe\.hbs/);
  });

  describe('fromDirectory', () => {
    let dir: string | undefined;
    afterEach(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    });

    function copyShipped(except: string[] = []): string {
      dir = mkdtempSync(join(tmpdir(), 'hiveboot-templates-'));
      for (const f of readdirSync(DEFAULT_TEMPLATES_DIR)) {
        if (except.some((e) => f === `${e}.ipxe.hbs`)) continue;
        writeFileSync(join(dir, f), readFileSync(join(DEFAULT_TEMPLATES_DIR, f)));
      }
      return dir;
    }

    it('loads extra templates next to the required ones and ignores other files', () => {
      const d = copyShipped();
      writeFileSync(join(d, 'rescue.ipxe.hbs'), '#!ipxe\necho rescue {{v mac}}\nexit\n');
      writeFileSync(join(d, 'README.md'), '{{not a template}}');
      const set = TemplateSet.fromDirectory(d);
      expect(set.names()).toEqual(['bootstrap', 'discovery', 'exit', 'rescue', 'sanboot', 'wait']);
      expect(set.render('rescue', { mac: MAC })).toBe(`#!ipxe\necho rescue ${MAC}\nexit\n`);
    });

    it('refuses a directory that lacks a required template, naming it', () => {
      const d = copyShipped(['wait']);
      expect(() => TemplateSet.fromDirectory(d)).toThrow(/missing wait\.ipxe\.hbs/);
    });

    it('refuses an unsafe custom template, naming its file and line', () => {
      const d = copyShipped();
      writeFileSync(join(d, 'custom.ipxe.hbs'), '#!ipxe\n# boots {{v hostname}}\nset initiator-iqn {{initiatorIqn}}\n');
      expect(() => TemplateSet.fromDirectory(d)).toThrow(/custom\.ipxe\.hbs: line 3: "\{\{initiatorIqn\.\.\.\}\}" prints without a safe helper/);
    });

    it('says which directory it could not read', () => {
      const missing = join(tmpdir(), 'hiveboot-no-such-dir-for-test');
      expect(() => TemplateSet.fromDirectory(missing)).toThrow(TemplateError);
      expect(() => TemplateSet.fromDirectory(missing)).toThrow(missing);
    });
  });
});

describe('{{v}}: one word on an iPXE line', () => {
  it('prints ordinary identifiers unchanged', () => {
    for (const ok of ['worker-1', 'iqn.2003-01.org.linux-iscsi.gw:worker-1', 'iscsi:[2001:db8::1]::3260:0:iqn.x', `${BASE}/boot/${MAC}.ipxe`, 'user@x/+']) {
      expect(one('v', ok)).toBe(`#!ipxe\necho ${ok}\n`);
    }
  });

  it.each([
    ['a newline and a command', 'w1\nshell'],
    ['a carriage return and a command', 'w1\rshell'],
    ['a setting expansion', '${net0/ip}'],
    ['a bare dollar', 'a$b'],
    ['a comment mark', 'w1 #'],
    ['a hash inside', 'a#b'],
    ['an or-operator', 'w1||shell'],
    ['an and-operator', 'w1&&shell'],
    ['a single ampersand', 'a&b'],
    ['a single pipe', 'a|b'],
    ['a semicolon', 'w1;shell'],
    ['a backslash', 'a\\nshell'],
    ['a double quote', 'a"b'],
    ['a single quote', "a'b"],
    ['a backtick', 'a`b'],
    ['a tab', 'a\tb'],
    ['a space', 'a b'],
    ['a NUL byte', 'a\u0000b'],
    ['DEL', 'a\u007fb'],
    ['a vertical tab', 'a\u000bb'],
    ['a non-breaking space', 'a\u00a0b'],
    ['a Unicode line separator', 'a\u2028shell'],
  ])('refuses %s and produces no output', (_what, value) => {
    let out: string | undefined;
    expect(() => {
      out = one('v', value);
    }).toThrow(TemplateError);
    expect(out).toBeUndefined();
  });

  it('names the refused value in the error without breaking the line', () => {
    expect(() => one('v', 'w1\nshell')).toThrow('refusing to put "w1\\x0ashell" on an iPXE line');
  });
});

describe('{{args}}: several words on an iPXE line', () => {
  it('allows single spaces between words', () => {
    expect(one('args', 'console=ttyS0,115200 quiet ip=dhcp')).toBe('#!ipxe\necho console=ttyS0,115200 quiet ip=dhcp\n');
    expect(one('args', 'pending, waiting for a disk')).toBe('#!ipxe\necho pending, waiting for a disk\n');
  });

  it.each([
    ['a newline', 'quiet\nshell'],
    ['a carriage return', 'quiet\rshell'],
    ['a tab', 'quiet\tsplash'],
    ['a setting expansion', 'root=${root-path}'],
    ['a comment mark', 'quiet # x'],
    ['an or-operator', 'quiet || shell'],
    ['an and-operator', 'quiet && shell'],
    ['a semicolon', 'quiet; shell'],
    ['a backslash', 'quiet \\'],
    ['a double quote', 'a="b c"'],
    ['a single quote', "a='b'"],
    ['a backtick', 'a=`b`'],
    ['a control character', 'a\u0007b'],
  ])('refuses %s', (_what, value) => {
    expect(() => one('args', value)).toThrow(TemplateError);
  });
});

describe('{{efipath}}: a path in the EFI system partition', () => {
  it('turns /EFI/BOOT/BOOTX64.EFI into \\EFI\\BOOT\\BOOTX64.EFI', () => {
    expect(one('efipath', '/EFI/BOOT/BOOTX64.EFI')).toBe('#!ipxe\necho \\EFI\\BOOT\\BOOTX64.EFI\n');
    expect(one('efipath', '/EFI/debian/shimx64.efi')).toBe('#!ipxe\necho \\EFI\\debian\\shimx64.efi\n');
    expect(one('efipath', '/grubx64.efi')).toBe('#!ipxe\necho \\grubx64.efi\n');
  });

  it.each([
    ['a space', 'EFI BOOT'],
    ['a space after a slash', '/EFI/BOOT BOOTX64.EFI'],
    ['no leading slash', 'EFI/BOOT/BOOTX64.EFI'],
    ['backslashes', '\\EFI\\BOOT\\BOOTX64.EFI'],
    ['an empty segment', '/EFI//BOOTX64.EFI'],
    ['a trailing slash', '/EFI/BOOT/'],
    ['the empty string', ''],
    ['a newline', '/EFI/BOOT\nshell'],
    ['a setting expansion', '/EFI/${x}'],
    ['a semicolon', '/EFI/a;b'],
    ['a parent-directory segment', '/EFI/../BOOTX64.EFI'],
    ['a current-directory segment', '/EFI/./BOOTX64.EFI'],
  ])('refuses %s', (_what, value) => {
    expect(() => one('efipath', value)).toThrow(TemplateError);
  });
});

describe("Handlebars' global environment", () => {
  it('is not touched: the safe helpers live only in the TemplateSet', () => {
    TemplateSet.fromSources({ t: '#!ipxe\necho {{v a}} {{args b}} {{efipath c}}\n' });
    expect(Handlebars.helpers).not.toHaveProperty('v');
    expect(Handlebars.helpers).not.toHaveProperty('args');
    expect(Handlebars.helpers).not.toHaveProperty('efipath');
    expect(Handlebars.partials).toEqual({});
  });

  it("a helper registered globally does not replace the TemplateSet's own", () => {
    Handlebars.registerHelper('v', (value: unknown) => String(value));
    try {
      const set = TemplateSet.fromSources({ t: '#!ipxe\necho {{v a}}\n' });
      expect(() => set.render('t', { a: 'w1\nshell' })).toThrow(TemplateError);
    } finally {
      Handlebars.unregisterHelper('v');
    }
  });
});
