/**
 * Mode parameters (SPC-4 and SBC-4 mode parameters): the pages we report, which bits an initiator may change, and
 * the MODE SENSE / MODE SELECT parameter lists built from and checked against them. Pure: mode state in,
 * bytes out, and a parsed MODE SELECT list back (applied by the caller only once all of it is valid).
 *
 * Pages: Caching (08h; WCE is the one changeable bit: Linux's "write through" setting clears it), Control
 * (0Ah) and Informational Exceptions Control (1Ch). No page is savable (PS=0): Linux copies PS into
 * MODE SELECT's SP bit, which we would have to refuse.
 */
import { u16, u32, highestBit, putU64 } from './cdb.js';
import { Asc, illegalRequest, invalidFieldInCdb, invalidFieldInParameterList } from './sense.js';
import type { ModeState, Unit } from './unit.js';

export const ModePage = {
  Caching: 0x08,
  Control: 0x0a,
  InformationalExceptions: 0x1c,
  All: 0x3f,
} as const;

/** MODE SENSE PC field (SPC-4). */
export const PageControl = { Current: 0, Changeable: 1, Default: 2, Saved: 3 } as const;

export const DEFAULT_MODE_STATE: Readonly<ModeState> = Object.freeze({ writeCacheEnabled: true });

export interface PageDef {
  code: number;
  /** The whole page (header included) holding the values in the given state. */
  values: (state: ModeState) => Buffer;
  /** Same layout: a bit set to one is changeable with MODE SELECT (the PC=01b answer). */
  changeable: Buffer;
  /** Takes a validated page's changeable bits into the state. */
  apply: (state: ModeState, page: Buffer) => void;
}

function page(code: number, length: number, fill: (b: Buffer) => void = () => {}): Buffer {
  const b = Buffer.alloc(2 + length);
  b[0] = code;
  b[1] = length;
  fill(b);
  return b;
}

const WCE = 0x04;

const PAGES: readonly PageDef[] = [
  {
    // Caching (SBC-4). WCE=1 by default: backends acknowledge writes from the page cache and
    // SYNCHRONIZE CACHE / FUA make them durable, which is exactly write-back caching.
    code: ModePage.Caching,
    values: (state) => page(ModePage.Caching, 0x12, (b) => (b[2] = state.writeCacheEnabled ? WCE : 0)),
    changeable: page(ModePage.Caching, 0x12, (b) => (b[2] = WCE)),
    apply: (state, p) => {
      state.writeCacheEnabled = (p[2]! & WCE) !== 0;
    },
  },
  {
    // Control (SPC-4): TST=000b (one task set), GLTSD=1 (no log parameters to save), D_SENSE=0
    // (fixed-format sense), QUEUE ALGORITHM MODIFIER=1 (commands may be reordered: the transport runs
    // them concurrently), QERR=00b, SWP=0, BUSY TIMEOUT PERIOD FFFFh (unlimited).
    code: ModePage.Control,
    values: () =>
      page(ModePage.Control, 0x0a, (b) => {
        b[2] = 0x02;
        b[3] = 0x10;
        b.writeUInt16BE(0xffff, 8);
      }),
    changeable: page(ModePage.Control, 0x0a),
    apply: () => {},
  },
  {
    // Informational Exceptions Control (SPC-4): DEXCPT=1, we have no failure prediction.
    code: ModePage.InformationalExceptions,
    values: () => page(ModePage.InformationalExceptions, 0x0a, (b) => (b[2] = 0x08)),
    changeable: page(ModePage.InformationalExceptions, 0x0a),
    apply: () => {},
  },
];

const byCode = new Map(PAGES.map((p) => [p.code, p]));

export interface ModeSenseRequest {
  /** true: MODE SENSE(10) layout (8-byte header). */
  ten: boolean;
  dbd: boolean;
  /** MODE SENSE(10) LLBAA: a 16-byte block descriptor. */
  llbaa: boolean;
  pageControl: number;
  pageCode: number;
  subpageCode: number;
}

function pageBytes(def: PageDef, pc: number, state: ModeState): Buffer {
  if (pc === PageControl.Changeable) return def.changeable;
  return def.values(pc === PageControl.Default ? { ...DEFAULT_MODE_STATE } : state);
}

/**
 * Short or long LBA block descriptor (SBC-4): capacity and block length, or all zero when the question is
 * what may change (nothing).
 */
function blockDescriptor(unit: Unit, long: boolean, changeable: boolean): Buffer {
  const b = Buffer.alloc(long ? 16 : 8);
  if (changeable) return b;
  if (long) {
    putU64(b, 0, unit.blocks);
    b.writeUInt32BE(unit.blockSize, 12);
  } else {
    // Too many blocks for 32 bits: FFFFFFFFh, and the initiator asks READ CAPACITY(16).
    b.writeUInt32BE(Math.min(unit.blocks, 0xffff_ffff), 0);
    b.writeUIntBE(unit.blockSize, 5, 3);
  }
  return b;
}

/** The MODE SENSE(6)/(10) parameter data (SPC-4 mode parameter list), before the allocation length applies. */
export function modeSense(unit: Unit, req: ModeSenseRequest): Buffer {
  if (req.pageControl === PageControl.Saved) {
    // SPC-4 MODE SENSE: saved values not implemented.
    throw illegalRequest(Asc.SavingParametersNotSupported, { inCdb: true, byte: 2, bit: 7 });
  }
  // Subpage 00h is the page itself, FFh the page and all its subpages; we have no subpages.
  if (req.subpageCode !== 0x00 && req.subpageCode !== 0xff) throw invalidFieldInCdb(3);
  let defs: readonly PageDef[];
  if (req.pageCode === ModePage.All) defs = PAGES;
  else {
    const def = byCode.get(req.pageCode);
    if (!def) throw invalidFieldInCdb(2, 5);
    defs = [def];
  }
  const pages = defs.map((d) => pageBytes(d, req.pageControl, unit.mode));
  const changeable = req.pageControl === PageControl.Changeable;
  const descriptor = req.dbd ? Buffer.alloc(0) : blockDescriptor(unit, req.ten && req.llbaa, changeable);
  // Device-specific parameter (SBC-4): WP when read-only; DPOFUA=1, we honour DPO and FUA.
  const deviceSpecific = (unit.device.readOnly ? 0x80 : 0) | 0x10;
  let header: Buffer;
  if (req.ten) {
    header = Buffer.alloc(8);
    header[3] = deviceSpecific;
    header[4] = descriptor.length === 16 ? 0x01 : 0; // LONGLBA
    header.writeUInt16BE(descriptor.length, 6);
  } else {
    header = Buffer.alloc(4);
    header[2] = deviceSpecific;
    header[3] = descriptor.length;
  }
  const out = Buffer.concat([header, descriptor, ...pages]);
  // MODE DATA LENGTH counts the bytes after itself.
  if (req.ten) out.writeUInt16BE(out.length - 2, 0);
  else out[0] = Math.min(out.length - 1, 0xff);
  return out;
}

export interface ModeSelectRequest {
  ten: boolean;
  pf: boolean;
  /** The parameter list as received (already cut to the PARAMETER LIST LENGTH). */
  params: Buffer;
}

const parameterListLengthError = () => illegalRequest(Asc.ParameterListLengthError);

/**
 * Checks a MODE SELECT parameter list (SPC-4 MODE SELECT) against the unit and returns the pages to apply,
 * so nothing changes unless all of it is acceptable. Any attempt to change a bit that is not changeable
 * is INVALID FIELD IN PARAMETER LIST pointing at that bit (SPC-4 MODE SELECT).
 */
export function parseModeSelect(unit: Unit, req: ModeSelectRequest): Array<{ def: PageDef; page: Buffer }> {
  const p = req.params;
  if (p.length === 0) return [];
  // PF=0 would mean vendor-specific (SCSI-1) pages; we only understand the SPC page format.
  if (!req.pf) throw invalidFieldInCdb(1, 4);
  const headerLength = req.ten ? 8 : 4;
  if (p.length < headerLength) throw parameterListLengthError();
  // MODE DATA LENGTH is reserved in MODE SELECT, and so are the WP and DPOFUA bits of the
  // device-specific parameter (SBC-4): ignored. MEDIUM TYPE is 00h for block devices.
  const mediumTypeAt = req.ten ? 2 : 1;
  if (p[mediumTypeAt] !== 0) throw invalidFieldInParameterList(mediumTypeAt);
  const longLba = req.ten && (p[4]! & 0x01) !== 0;
  const descriptorLengthAt = req.ten ? 6 : 3;
  const descriptorLength = req.ten ? u16(p, 6) : p[3]!;
  const descriptorSize = longLba ? 16 : 8;
  if (descriptorLength !== 0 && descriptorLength !== descriptorSize) {
    throw invalidFieldInParameterList(descriptorLengthAt);
  }
  if (p.length < headerLength + descriptorLength) throw parameterListLengthError();
  if (descriptorLength > 0) checkBlockDescriptor(unit, p, headerLength, longLba);

  const accepted: Array<{ def: PageDef; page: Buffer }> = [];
  let at = headerLength + descriptorLength;
  while (at < p.length) {
    if (at + 2 > p.length) throw parameterListLengthError();
    // SPF=1 would be a subpage; we have none. PS is reserved in MODE SELECT and ignored.
    if (p[at]! & 0x40) throw invalidFieldInParameterList(at, 6);
    const def = byCode.get(p[at]! & 0x3f);
    if (!def) throw invalidFieldInParameterList(at, 5);
    const length = p[at + 1]!;
    const current = def.values(unit.mode);
    if (length !== current.length - 2) throw invalidFieldInParameterList(at + 1);
    if (at + 2 + length > p.length) throw parameterListLengthError();
    const sent = p.subarray(at, at + 2 + length);
    for (let i = 2; i < sent.length; i++) {
      const refused = (sent[i]! ^ current[i]!) & ~def.changeable[i]!;
      if (refused) throw invalidFieldInParameterList(at + i, highestBit(refused));
    }
    accepted.push({ def, page: sent });
    at += 2 + length;
  }
  return accepted;
}

/**
 * A block descriptor may restate the capacity and must restate the block length: we change neither
 * (SBC-4 block descriptor: NUMBER OF LOGICAL BLOCKS 0 means "keep the current capacity").
 */
function checkBlockDescriptor(unit: Unit, p: Buffer, at: number, long: boolean): void {
  const blocks = long ? u32(p, at) * 0x1_0000_0000 + u32(p, at + 4) : u32(p, at);
  const shownBlocks = long ? unit.blocks : Math.min(unit.blocks, 0xffff_ffff);
  if (blocks !== 0 && blocks !== shownBlocks) throw invalidFieldInParameterList(at);
  const lengthAt = long ? at + 12 : at + 5;
  const blockLength = long ? u32(p, lengthAt) : p.readUIntBE(lengthAt, 3);
  if (blockLength !== unit.blockSize) throw invalidFieldInParameterList(lengthAt);
}

export function applyModeSelect(state: ModeState, pages: ReadonlyArray<{ def: PageDef; page: Buffer }>): void {
  for (const { def, page } of pages) def.apply(state, page);
}

