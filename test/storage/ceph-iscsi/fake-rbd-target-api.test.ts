// The fake rbd-target-api against the contract it was built from (../shared/eval/ceph/ceph-iscsi-api.md,
// ceph-iscsi 3.5's source): the documented curl sequence, messages, status codes and config shapes.
// The real API cannot be run here to compare with (LIO does not exist on this machine; every change
// fails in configfs), so this checks the fake against the document, call by call.
import { afterEach, describe, expect, it } from 'vitest';
import { FakeRbdTargetApi, type FakeRbdTargetApiOptions } from '../../support/fake-rbd-target-api.js';

const T = 'iqn.2003-01.com.example:gw';
const C = 'iqn.2026-11.test:machine01';
const U = 'admin:s3cret';

const fakes: FakeRbdTargetApi[] = [];
afterEach(async () => {
  while (fakes.length) await fakes.pop()!.stop();
});

/** The document's set-up: gateway "localhost" at 192.0.2.2, minimum_gateways = 1, api_user admin / s3cret. */
async function start(over: Partial<FakeRbdTargetApiOptions> = {}): Promise<FakeRbdTargetApi> {
  const fake = new FakeRbdTargetApi({
    thisHost: 'localhost',
    hosts: { localhost: ['fd00::2', '192.0.2.2'] },
    user: 'admin',
    password: 's3cret',
    minimumGateways: 1,
    ...over,
  });
  fakes.push(fake);
  await fake.start();
  return fake;
}

/** curl -u <auth> -X <method> [-d k=v ...] <url>: a form-encoded body, as curl -d sends. */
async function curl(fake: FakeRbdTargetApi, method: string, path: string, form?: Record<string, string>, auth: string | null = U) {
  const res = await fetch(`${fake.url}/api/${path}`, {
    method,
    headers: {
      ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}),
      ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    },
    ...(form ? { body: new URLSearchParams(form).toString() } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { message?: string } };
}

/** Section 5 up to the target LUN, for the tests that start from a target with a disk. */
async function targetWithDisk(fake: FakeRbdTargetApi) {
  await curl(fake, 'PUT', `target/${T}`);
  await curl(fake, 'PUT', `gateway/${T}/localhost`, { ip_address: '192.0.2.2', skipchecks: 'true' });
  await curl(fake, 'PUT', 'disk/rbd/machine-01', { mode: 'create', create_image: 'false' });
  await curl(fake, 'PUT', `targetlun/${T}`, { disk: 'rbd/machine-01', lun_id: '0' });
}

describe('fake rbd-target-api: the documented curl sequence (section 5)', () => {
  it('answers each step as ceph-iscsi 3.5 does and leaves the documented config shapes', async () => {
    const fake = await start();
    const steps: [string, string, Record<string, string> | undefined, string][] = [
      ['PUT', `target/${T}`, undefined, 'Target defined successfully'],
      ['PUT', `gateway/${T}/localhost`, { ip_address: '192.0.2.2', skipchecks: 'true' }, 'Gateway creation successful'],
      ['PUT', 'disk/rbd/machine-01', { mode: 'create', create_image: 'false' }, 'disk create/update successful'],
      ['PUT', `targetlun/${T}`, { disk: 'rbd/machine-01', lun_id: '0' }, 'Target LUN mapping updated successfully'],
      ['PUT', `client/${T}/${C}`, undefined, 'client create/update successful'],
      [
        'PUT',
        `clientauth/${T}/${C}`,
        { username: 'machine01', password: 'secretpass0001', mutual_username: 'targetuser', mutual_password: 'mutualpass0001' },
        'client auth successful',
      ],
      ['PUT', `clientlun/${T}/${C}`, { disk: 'rbd/machine-01' }, 'client masking update successful'],
    ];
    for (const [method, path, form, message] of steps) {
      expect(await curl(fake, method, path, form), `${method} ${path}`).toEqual({ status: 200, body: { message } });
    }

    const { body: cfg } = await curl(fake, 'GET', 'config');
    expect(Object.keys(cfg).sort()).toEqual(['created', 'discovery_auth', 'disks', 'epoch', 'gateways', 'targets', 'updated', 'version']);
    expect(cfg.version).toBe(11);
    const target = (cfg.targets as Record<string, Record<string, unknown>>)[T]!;
    expect(Object.keys(target).sort()).toEqual(['acl_enabled', 'auth', 'clients', 'controls', 'disks', 'groups', 'ip_list', 'portals']);
    expect(target.disks).toEqual({ 'rbd/machine-01': { lun_id: 0 } });
    expect(target.ip_list).toEqual(['192.0.2.2']);
    expect(target.portals).toEqual({
      localhost: { tpgs: 1, gateway_ip_list: ['192.0.2.2'], portal_ip_addresses: ['192.0.2.2'], inactive_portal_ips: [] },
    });
    expect(target.clients).toEqual({
      [C]: {
        auth: {
          username: 'machine01',
          password: 'secretpass0001',
          password_encryption_enabled: false,
          mutual_username: 'targetuser',
          mutual_password: 'mutualpass0001',
          mutual_password_encryption_enabled: false,
        },
        luns: { 'rbd/machine-01': { lun_id: 0 } },
        group_name: '',
      },
    });
    const disk = (cfg.disks as Record<string, Record<string, unknown>>)['rbd/machine-01']!;
    expect(Object.keys(disk).sort()).toEqual(
      ['allocating_host', 'backstore', 'backstore_object_name', 'controls', 'image', 'owner', 'pool', 'pool_id', 'wwn'].sort(),
    );
    expect(disk).toMatchObject({ pool: 'rbd', image: 'machine-01', backstore: 'user:rbd', owner: 'localhost' });
    expect(cfg.gateways).toEqual({ localhost: { active_luns: 1 } });

    // The read-only helpers (section 4.8), observed answers included.
    expect((await curl(fake, 'GET', 'targets')).body).toEqual({ targets: [T] });
    expect((await curl(fake, 'GET', 'disks')).body).toEqual({ disks: ['rbd/machine-01'] });
    expect((await curl(fake, 'GET', `clients/${T}`)).body).toEqual({ clients: [C] });
    expect((await curl(fake, 'GET', `_clientlun/${T}/${C}`)).body).toEqual({ message: { 'rbd/machine-01': { lun_id: 0 } } });
    expect((await curl(fake, 'GET', 'sysinfo/hostname')).body).toEqual({ data: 'localhost' });
    expect((await curl(fake, 'GET', 'sysinfo/ip_addresses')).body).toEqual({ data: ['fd00::2', '192.0.2.2'] });
    expect((await curl(fake, 'GET', 'sysinfo/checkversions')).body).toEqual({ data: 'checks passed' });
    expect((await curl(fake, 'GET', '_ping')).body).toEqual({ message: 'pong' });
    expect((await curl(fake, 'GET', 'disk/rbd/nope')).body).toEqual({ message: 'rbd image rbd/nope not found' });
  });

  it('tears down in the order the API allows, each delete with its documented answer', async () => {
    const fake = await start();
    await targetWithDisk(fake);
    await curl(fake, 'PUT', `client/${T}/${C}`);
    await curl(fake, 'PUT', `clientlun/${T}/${C}`, { disk: 'rbd/machine-01' });

    expect((await curl(fake, 'DELETE', 'disk/rbd/machine-01')).body.message).toBe(`Unable to delete rbd/machine-01. Allocated to: ${C}`);
    expect((await curl(fake, 'DELETE', `targetlun/${T}`, { disk: 'rbd/machine-01' })).body.message).toBe(
      `Delete target LUN mapping failed - failed on localhost. Failed to remove the LUN - Unable to delete rbd/machine-01 - allocated to ${C}`,
    );
    expect(await curl(fake, 'DELETE', `clientlun/${T}/${C}`, { disk: 'rbd/machine-01' })).toEqual({
      status: 200,
      body: { message: 'client masking update successful' },
    });
    expect(await curl(fake, 'DELETE', `clientlun/${T}/${C}`, { disk: 'rbd/machine-01' })).toEqual({ status: 400, body: { message: 'disk not mapped to client' } });
    expect(await curl(fake, 'DELETE', `client/${T}/${C}`)).toEqual({ status: 200, body: { message: 'client delete successful' } });
    expect(await curl(fake, 'DELETE', `client/${T}/${C}`)).toEqual({ status: 400, body: { message: `${C} is not defined yet - nothing to delete` } });
    expect((await curl(fake, 'DELETE', 'disk/rbd/machine-01')).body.message).toBe(`Unable to delete rbd/machine-01. Mapped to: ${T}`);
    expect((await curl(fake, 'DELETE', `targetlun/${T}`, { disk: 'rbd/machine-01' })).status).toBe(200);
    expect(await curl(fake, 'DELETE', 'disk/rbd/machine-01', { preserve_image: 'true' })).toEqual({
      status: 200,
      body: { message: 'disk map deletion successful' },
    });
    expect(fake.deletedImages).toEqual([]);
    expect(await curl(fake, 'DELETE', `target/${T}`)).toEqual({ status: 200, body: { message: 'Target deleted.' } });
    expect(fake.config.targets).toEqual({});
    expect(fake.config.disks).toEqual({});
    expect(fake.config.gateways).toEqual({});
    // What is gone answers as the source does: a KeyError on the missing key.
    expect(await curl(fake, 'DELETE', 'disk/rbd/machine-01')).toEqual({ status: 500, body: { message: "Unhandled exception: 'rbd/machine-01'" } });
    expect(await curl(fake, 'DELETE', `target/${T}`)).toEqual({ status: 500, body: { message: `failed on localhost. Unhandled exception: '${T}'` } });
  });
});

describe('fake rbd-target-api: access (section 2)', () => {
  it('lists the API without credentials, and refuses everything else without the right ones', async () => {
    const fake = await start();
    expect((await curl(fake, 'GET', '', undefined, null)).status).toBe(200);
    expect(await curl(fake, 'GET', 'config', undefined, null)).toEqual({ status: 401, body: { message: 'Missing credentials' } });
    expect(await curl(fake, 'GET', 'config', undefined, 'admin:wrong')).toEqual({
      status: 401,
      body: { message: 'username/password mismatch with the configuration file' },
    });
    expect(await curl(fake, 'GET', 'sysinfo/hostname', undefined, 'admin:wrong')).toEqual({
      status: 401,
      body: { message: 'username/password mismatch with the configuration file' },
    });
  });

  it('checks the caller\'s address before its credentials: gateways, localhost, the targets\' ip_list, trusted_ip_list', async () => {
    const outsider = await start({ callerAddress: '192.0.2.99' });
    expect(await curl(outsider, 'GET', 'config', undefined, null)).toEqual({ status: 403, body: { message: 'API access not available to 192.0.2.99' } });
    // sysinfo only asks for credentials (requires_basic_auth).
    expect((await curl(outsider, 'GET', 'sysinfo/hostname')).status).toBe(200);
    const trusted = await start({ callerAddress: '192.0.2.99', trustedIpList: ['192.0.2.99'] });
    expect((await curl(trusted, 'GET', 'config')).status).toBe(200);
    // An IPv4-mapped IPv6 source is compared without its ::ffff: prefix.
    const mapped = await start({ callerAddress: '::ffff:192.0.2.99', trustedIpList: ['192.0.2.99'] });
    expect((await curl(mapped, 'GET', 'config')).status).toBe(200);
    // A portal address in a target's ip_list is trusted too.
    const portal = await start({ callerAddress: '192.0.2.2' });
    expect((await curl(portal, 'GET', 'config')).status).toBe(403);
    portal.config.targets[T] = { disks: {}, clients: {}, acl_enabled: true, auth: portal.config.discovery_auth, portals: {}, groups: {}, controls: {}, ip_list: ['192.0.2.2'] };
    expect((await curl(portal, 'GET', 'config')).status).toBe(200);
  });

  it('reads bodies as forms only: a JSON body is an empty form', async () => {
    const fake = await start();
    await curl(fake, 'PUT', `target/${T}`);
    const res = await fetch(`${fake.url}/api/gateway/${T}/localhost`, {
      method: 'PUT',
      headers: { authorization: `Basic ${Buffer.from(U).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ip_address: '192.0.2.2', skipchecks: 'true' }),
    });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ message: "Unhandled exception: 'NoneType' object has no attribute 'split'" });
  });
});

describe('fake rbd-target-api: validation (section 4)', () => {
  it('names an unknown target the way a KeyError does (observed)', async () => {
    const fake = await start();
    expect(await curl(fake, 'PUT', `gateway/${T}/localhost`, { ip_address: '192.0.2.2' })).toEqual({
      status: 500,
      body: { message: `Unhandled exception: '${T}'` },
    });
    expect((await curl(fake, 'PUT', 'target/not-an-iqn')).body.message).toMatch(/^Invalid iqn not-an-iqn - /);
  });

  it('checks a new portal against the gateway unless skipchecks=true (valid_gateway)', async () => {
    const fake = await start({ thisHost: 'gw1', hosts: { gw1: ['192.0.2.11'], gw2: ['192.0.2.12'] } });
    await curl(fake, 'PUT', `target/${T}`);
    const put = (gw: string, ip: string) => curl(fake, 'PUT', `gateway/${T}/${gw}`, { ip_address: ip });
    expect((await put('gw9', '192.0.2.19')).body.message).toBe("Gateway 'gw9' is not resolvable to an IP address");
    expect((await put('gw1', '192.0.2.99')).body.message).toBe('IP address of 192.0.2.99 is not available on gw1. Valid IPs are :192.0.2.11');
    expect(await put('gw1', '192.0.2.11')).toEqual({ status: 200, body: { message: 'Gateway creation successful' } });
    expect((await put('gw1', '192.0.2.11')).body.message).toBe('Gateway already exists in configuration');
    expect((await put('gw2', '192.0.2.11')).body.message).toBe('IP address already defined to the configuration');
    fake.setGateway('gw2', { api: 'down' });
    expect((await put('gw2', '192.0.2.12')).body.message).toBe(
      'ip_addresses query to gw2 failed - check rbd-target-api log. Is the API server running and in the right mode (http/https)?',
    );
    fake.setGateway('gw2', { api: 'up' });
    expect((await put('gw2', '192.0.2.12')).status).toBe(200);
    expect(Object.keys(fake.config.targets[T]!.portals)).toEqual(['gw1', 'gw2']);
    expect(fake.config.targets[T]!.portals.gw1!.inactive_portal_ips).toEqual(['192.0.2.12']);
  });

  it('makes the first portal on the gateway it runs on, whatever name is asked (call_api to localhost)', async () => {
    const fake = await start({ thisHost: 'gw1', hosts: { gw1: ['192.0.2.11'], gw2: ['192.0.2.12'] } });
    await curl(fake, 'PUT', `target/${T}`);
    expect((await curl(fake, 'PUT', `gateway/${T}/gw2`, { ip_address: '192.0.2.12' })).status).toBe(200);
    expect(Object.keys(fake.config.targets[T]!.portals)).toEqual(['gw1']);
  });

  it('registers an existing (cloned) image with create_image=false, and refuses what LUN.valid_disk refuses', async () => {
    const fake = await start({ imageExists: (_pool, image) => image !== 'missing' });
    const put = (image: string, form: Record<string, string>) => curl(fake, 'PUT', `disk/rbd/${image}`, form);
    expect(await put('x', { mode: 'create', backstore: 'fileio' })).toEqual({
      status: 400,
      body: { message: "Invalid 'fileio' backstore - Supported backstores: user:rbd" },
    });
    expect((await curl(fake, 'PUT', 'disk/nopool/x', { mode: 'create' })).body.message).toBe('pool name is invalid');
    expect((await put('x', { mode: 'create', size: '10 GB' })).body.message).toBe('Size is invalid');
    expect((await put('x', { mode: 'create', count: '11' })).body.message).toBe('invalid count specified, must be an integer (1-10)');
    expect((await put('x', { mode: 'create', create_image: 'maybe' })).body.message).toBe("Invalid 'create_image' value maybe");
    expect((await put('missing', { mode: 'create', create_image: 'false' })).body.message).toBe('Image rbd/missing does not exist');
    expect((await put('missing', { mode: 'create' })).body.message).toBe('Size parameter is required when creating a new image');
    expect((await put('x', { mode: 'create', create_image: 'false' })).status).toBe(200);
    expect((await put('x', { mode: 'create', create_image: 'false' })).body.message).toBe('at least one rbd image(s) with that name/prefix is already defined');
    expect((await put('y', {})).body.message).toBe("Unhandled exception: 'rbd/y'");
  });

  it('maps a disk on one target only, and only with minimum_gateways portals', async () => {
    const fake = await start({ minimumGateways: 2 });
    await targetWithDisk(fake);
    expect(await curl(fake, 'PUT', `targetlun/${T}`, { disk: 'rbd/machine-01' })).toEqual({
      status: 400,
      body: { message: 'at least 2 gateways must exist before disk mapping operations are permitted' },
    });
    expect((await curl(fake, 'PUT', `client/${T}/${C}`)).body.message).toBe(
      'Clients can not be defined until a HA configuration has been defined (>2 gateways)',
    );

    const one = await start();
    await targetWithDisk(one);
    const T2 = 'iqn.2003-01.com.example:other';
    await curl(one, 'PUT', `target/${T2}`);
    await curl(one, 'PUT', `gateway/${T2}/localhost`, { ip_address: '192.0.2.3', skipchecks: 'true' });
    expect((await curl(one, 'PUT', `targetlun/${T2}`, { disk: 'rbd/machine-01' })).body.message).toBe(
      `Disk rbd/machine-01 cannot be used because it is already mapped on target ${T}`,
    );
    expect((await curl(one, 'PUT', `targetlun/${T2}`, { disk: 'rbd/none' })).body.message).toBe('Disk rbd/none is not defined in the configuration');
    await curl(one, 'PUT', 'disk/rbd/second', { mode: 'create', create_image: 'false' });
    expect((await curl(one, 'PUT', `targetlun/${T}`, { disk: 'rbd/second', lun_id: '0' })).body.message).toBe('Lun id 0 already in use');
    expect((await curl(one, 'PUT', `targetlun/${T}`, { disk: 'rbd/second', lun_id: 'x' })).body.message).toBe('Lun id must be a number');
    // A client LUN needs the disk on the target first (4.7).
    await curl(one, 'PUT', `client/${T}/${C}`);
    expect((await curl(one, 'PUT', `clientlun/${T}/${C}`, { disk: 'rbd/second' })).body.message).toBe(
      'client masking update failed on localhost. Client update failed - rbd/second is missing from the tpg - unable to map',
    );
  });

  it('refuses client operations on a gateway that is not a portal of the target', async () => {
    const fake = await start({ thisHost: 'gw1', hosts: { gw1: ['192.0.2.11'], gw2: ['192.0.2.12'] }, minimumGateways: 1 });
    fake.config.targets[T] = {
      disks: {},
      clients: {},
      acl_enabled: true,
      auth: { ...fake.config.discovery_auth },
      portals: { gw2: { tpgs: 1, gateway_ip_list: ['192.0.2.12'], portal_ip_addresses: ['192.0.2.12'], inactive_portal_ips: [] } },
      groups: {},
      controls: {},
      ip_list: ['192.0.2.12'],
    };
    expect(await curl(fake, 'PUT', `client/${T}/${C}`)).toEqual({
      status: 400,
      body: { message: 'gw1 cannot be used to perform this operation because it is not defined within the gateways configuration' },
    });
  });

  it('checks CHAP credentials with valid_credentials\' rules and messages (4.6)', async () => {
    const fake = await start();
    await targetWithDisk(fake);
    await curl(fake, 'PUT', `client/${T}/${C}`);
    const auth = async (form: Record<string, string>) => (await curl(fake, 'PUT', `clientauth/${T}/${C}`, form)).body.message;
    expect(await auth({ username: 'machine01' })).toBe('Password is required');
    expect(await auth({ password: 'secretpass0001' })).toBe('Username is required');
    expect(await auth({ username: 'machine01', password: 'secretpass0001', mutual_username: 'targetuser' })).toBe('Mutual password is required');
    expect(await auth({ username: 'machine01', password: 'secretpass0001', mutual_password: 'mutualpass0001' })).toBe('Mutual username is required');
    expect(await auth({ username: 'short', password: 'secretpass0001' })).toBe('Minimum length of username is 8 characters');
    expect(await auth({ username: 'u'.repeat(65), password: 'secretpass0001' })).toBe('Maximum length of username is 64 characters');
    expect(await auth({ username: 'machine 01', password: 'secretpass0001' })).toBe('Invalid username');
    expect(await auth({ username: 'machine01', password: 'short' })).toBe('Minimum length of password is 12 characters');
    expect(await auth({ username: 'machine01', password: 'p'.repeat(17) })).toBe('Maximum length of password is 16 characters');
    expect(await auth({ username: 'machine01', password: 'secret.pass0001' })).toBe('Invalid password');
    expect(await auth({ username: 'machine01', password: 'secretpass0001', mutual_username: 'target', mutual_password: 'mutualpass0001' })).toBe(
      'Minimum length of mutual username is 8 characters',
    );
    expect(await auth({ username: 'machine01', password: 'secretpass0001', mutual_username: 'targetuser', mutual_password: 'mutual+pass01' })).toBe(
      'Invalid mutual password',
    );
    // All empty: no CHAP (gwcli's "auth nochap").
    expect(await auth({})).toBe('client auth successful');
    // A client that is not defined fails before validation, with a KeyError.
    expect((await curl(fake, 'PUT', `clientauth/${T}/iqn.2026-11.test:nobody`, { username: 'machine01', password: 'secretpass0001' })).body.message).toBe(
      "Unhandled exception: 'iqn.2026-11.test:nobody'",
    );
  });

  it('keeps CHAP passwords encrypted in the config when keys exist, and decrypts them when asked', async () => {
    const fake = await start({ encryptPasswords: true });
    await targetWithDisk(fake);
    await curl(fake, 'PUT', `client/${T}/${C}`);
    await curl(fake, 'PUT', `clientauth/${T}/${C}`, { username: 'machine01', password: 'secretpass0001' });
    const clientOf = (cfg: Record<string, unknown>) =>
      (cfg.targets as Record<string, { clients: Record<string, { auth: { password: string; password_encryption_enabled: boolean } }> }>)[T]!.clients[C]!.auth;
    const plain = clientOf((await curl(fake, 'GET', 'config')).body);
    expect(plain.password_encryption_enabled).toBe(true);
    expect(plain.password).not.toBe('secretpass0001');
    expect(clientOf((await curl(fake, 'GET', 'config?decrypt_passwords=true')).body).password).toBe('secretpass0001');
  });

  it('refuses to delete a logged-in client', async () => {
    const fake = await start();
    await targetWithDisk(fake);
    await curl(fake, 'PUT', `client/${T}/${C}`);
    fake.loggedIn.add(`${T}|${C}`);
    expect((await curl(fake, 'GET', `clientinfo/${T}/${C}`)).body.state).toEqual({ LOGGED_IN: ['localhost'] });
    expect(await curl(fake, 'DELETE', `client/${T}/${C}`)).toEqual({
      status: 400,
      body: { message: `Client '${C}' is logged in to ${T}- unable to delete until it's logged out` },
    });
  });
});

describe('fake rbd-target-api: gateways down (call_api\'s pre-flight ping)', () => {
  it('fails a change with 503 naming each unavailable gateway, and changes nothing', async () => {
    const fake = await start({ thisHost: 'gw1', hosts: { gw1: ['192.0.2.11'], gw2: ['192.0.2.12'] }, minimumGateways: 2 });
    await curl(fake, 'PUT', `target/${T}`);
    await curl(fake, 'PUT', `gateway/${T}/gw1`, { ip_address: '192.0.2.11' });
    await curl(fake, 'PUT', `gateway/${T}/gw2`, { ip_address: '192.0.2.12' });
    await curl(fake, 'PUT', 'disk/rbd/machine-01', { mode: 'create', create_image: 'false' });
    fake.setGateway('gw2', { api: 'down' });
    expect(await curl(fake, 'PUT', `client/${T}/${C}`)).toEqual({
      status: 503,
      body: { message: 'client create/update failed, gateway(s) unavailable:gw2(UNKNOWN state)' },
    });
    fake.setGateway('gw2', { api: 'up', iscsi: 'down' });
    expect(await curl(fake, 'PUT', `targetlun/${T}`, { disk: 'rbd/machine-01' })).toEqual({
      status: 503,
      body: { message: 'Add target LUN mapping failed - failed, gateway(s) unavailable:gw2(iscsi down, API up)' },
    });
    // Disk registration only asks the local gateway.
    expect((await curl(fake, 'PUT', 'disk/rbd/machine-02', { mode: 'create', create_image: 'false' })).status).toBe(200);
    expect(fake.config.targets[T]!.clients).toEqual({});
    expect(fake.config.targets[T]!.disks).toEqual({});
  });
});
