// One iSCSI connection (RFC 7143), from the first Login PDU to logout or loss: login through the
// negotiator, then the full feature phase — SCSI commands with Data-In / R2T / Data-Out, NOP, Text
// (SendTargets), task management and Logout, with CmdSN windowing. Sessions have one connection
// (MaxConnections=1), so the CmdSN state lives here. ErrorRecoveryLevel is 0: anything that cannot be
// answered cleanly costs the connection, and the initiator recovers by session reinstatement.

import type { Socket } from 'node:net';
import { FrameReader, FramingError, framePdu, type Frame } from './framing.js';
import type { LoginOutcome, LoginRequest, LoginResponse, NegotiatedParams } from './login/types.js';
import {
  NO_RESIDUAL,
  Op,
  PduFormatError,
  RejectReason,
  RESERVED_TAG,
  TmfFunction,
  TmfResponse,
  decodeRequest,
  encodeDataIn,
  encodeLoginResponse,
  encodeLogoutResponse,
  encodeNopIn,
  encodeR2T,
  encodeReject,
  encodeScsiResponse,
  encodeTaskManagementResponse,
  encodeTextResponse,
  senseSegment,
  snAdd,
  snLess,
  type DataOutPdu,
  type LogoutRequestPdu,
  type NopOutPdu,
  type RequestPdu,
  type Residual,
  type ScsiCommandPdu,
  type SequenceNumbers,
  type TaskManagementRequestPdu,
  type TextRequestPdu,
} from './pdu.js';
import { ScsiStatus, type ScsiResult } from './scsi/types.js';
import type { SessionInfo, SessionTable } from './sessions.js';
import type { LogicalUnitHandler, TargetDirectory, TargetEntry } from './target.js';
import { sendTargetsResponse } from './send-targets.js';
import { SenseCode } from './transport-sense.js';
import { absentLunResult } from './scsi/absent-lun.js';
import { checkCondition } from './scsi/sense.js';

export interface LoginStepper {
  step(req: LoginRequest): { response: LoginResponse; outcome?: LoginOutcome; close?: boolean; reason?: string };
}

export interface ConnectionOptions {
  /** Commands the initiator may have outstanding (MaxCmdSN − ExpCmdSN + 1). */
  commandWindow: number;
  /** Idle time after which we ping the initiator with a NOP-In (ms); 0 disables pings. */
  nopInterval: number;
  /** Time without any PDU after a ping before the connection is declared dead (ms). */
  nopTimeout: number;
  /** Above this many bytes queued for sending, stop reading from the socket until it drains. */
  sendHighWater: number;
  /** A connection that has not completed login by then is closed (ms): the negotiator has no clock. */
  loginTimeout: number;
}

export const DEFAULT_CONNECTION_OPTIONS: ConnectionOptions = {
  commandWindow: 128,
  nopInterval: 10_000,
  nopTimeout: 30_000,
  sendHighWater: 32 * 1024 * 1024,
  loginTimeout: 30_000,
};

export interface LoginRefusal {
  peerAddress: string;
  initiatorName?: string;
  targetName?: string;
  status: number;
  /** Why, in words (never a secret). */
  reason?: string;
}

export interface ConnectionHooks {
  onLogin?(session: SessionInfo, reinstated: boolean): void;
  onLoginRefused?(refusal: LoginRefusal): void;
  onSessionEnd?(session: SessionInfo, reason: string): void;
  onProtocolError?(peerAddress: string, message: string): void;
  onCommand?(targetName: string, lun: number, kind: 'read' | 'write' | 'other', bytes: number, seconds: number): void;
}

export interface ConnectionDeps {
  socket: Socket;
  directory: TargetDirectory;
  sessions: SessionTable;
  negotiator: LoginStepper;
  hooks: ConnectionHooks;
  options: ConnectionOptions;
}

/** The login phase limit: until negotiated, both sides use 8192 (RFC 7143 §13.12). */
const LOGIN_MAX_DATA_SEGMENT = 8192;
const EMPTY = Buffer.alloc(0);
/** Open R2Ts of aborted tasks we remember, to drop their late Data-Out without a Reject. */
const MAX_ABORTED_TTTS = 1024;

interface R2TState {
  offset: number;
  length: number;
  received: number;
  nextDataSN: number;
}

interface Task {
  itt: number;
  pdu: ScsiCommandPdu;
  lun: number;
  handler?: LogicalUnitHandler;
  /** Write data being collected (length = EDTL). */
  buffer?: Buffer;
  received: number;
  /** End of the unsolicited region (immediate data + unsolicited Data-Out). */
  unsolicitedEnd: number;
  nextUnsolicitedDataSN: number;
  /** Next offset an R2T has not been sent for yet. */
  nextR2TOffset: number;
  r2ts: Map<number, R2TState>;
  r2tSN: number;
  /** A Data-Out broke the rules (DataSN, offset): the command fails once its data is in. */
  dataPhaseError: boolean;
  /** CmdSN order reached (commands run in CmdSN order, RFC 7143 §4.2.2.1). */
  ordered: boolean;
  started: boolean;
  aborted: boolean;
  /** Refused before any data moved: unsolicited data is swallowed, then the task is dropped. */
  refused: boolean;
  execution?: Promise<void>;
  /** EDTL ≠ the CDB's length: the residual to report and how much of the data to write. */
  writeResidual?: Residual;
  writeLength?: number;
}

export class IscsiConnection {
  readonly peerAddress: string;
  private readonly reader = new FrameReader({ headerDigest: false, dataDigest: false, maxDataSegmentLength: LOGIN_MAX_DATA_SEGMENT });
  private digests = { header: false, data: false };
  private phase: 'login' | 'full' | 'closed' = 'login';
  private busy = false;
  private statSN = 0;
  private statSNStarted = false;
  private expCmdSN = 0;
  private params?: NegotiatedParams;
  private outcome?: LoginOutcome;
  private entry?: TargetEntry;
  private session?: SessionInfo;
  private readonly tasks = new Map<number, Task>();
  /** Non-immediate PDUs that arrived ahead of ExpCmdSN, by CmdSN. */
  private readonly early = new Map<number, () => void>();
  /** TTTs of R2Ts that aborted tasks left open: their late Data-Out is dropped quietly (bounded). */
  private readonly abortedTtts = new Set<number>();
  private readonly inflight = new Set<Promise<void>>();
  private nextTtt = 1;
  /** The socket is corked until the next check phase (see write()). */
  private corked = false;
  private lastReceive = Date.now();
  private pingTtt: number | undefined;
  private pingSentAt = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private endReason = 'connection closed';
  private closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  constructor(private readonly deps: ConnectionDeps) {
    const { socket } = deps;
    this.peerAddress = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
    socket.setNoDelay(true);
    this.reader.dataTarget = (bhs, dataLength) => this.dataOutTarget(bhs, dataLength);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      if (this.phase !== 'closed' && !this.busy) socket.resume();
    });
    socket.on('error', (err) => this.end(`socket error: ${err.message}`));
    socket.on('close', () => this.end(this.endReason));
    const loginTimer = setTimeout(() => {
      if (this.phase === 'login') this.protocolFailure(`login not completed within ${deps.options.loginTimeout} ms`);
    }, deps.options.loginTimeout);
    loginTimer.unref();
    socket.once('close', () => clearTimeout(loginTimer));
    if (deps.options.nopInterval > 0) {
      this.pingTimer = setInterval(() => this.checkAlive(), Math.min(deps.options.nopInterval, 5000));
      this.pingTimer.unref();
    }
  }

  /** Resolves when the socket is closed and no storage I/O of this connection is in flight. */
  async terminate(reason: string): Promise<void> {
    this.endReason = reason;
    this.abortAll();
    this.deps.socket.destroy();
    await this.closedPromise;
    await Promise.allSettled([...this.inflight]);
  }

  // ----- input -----

  private onData(chunk: Buffer): void {
    this.lastReceive = Date.now();
    this.reader.push(chunk);
    this.drainFrames();
  }

  private drainFrames(): void {
    while (this.phase !== 'closed' && !this.busy) {
      let frame: Frame | undefined;
      try {
        frame = this.reader.next();
      } catch (err) {
        this.protocolFailure(err instanceof FramingError ? err.message : String(err));
        return;
      }
      if (!frame) return;
      try {
        this.onFrame(frame);
      } catch (err) {
        // A bug must cost this connection only, never the daemon or other initiators.
        this.protocolFailure(`internal error handling a PDU: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
    }
  }

  private onFrame(frame: Frame): void {
    let pdu: RequestPdu;
    try {
      pdu = decodeRequest(frame.bhs, frame.ahs, frame.data);
    } catch (err) {
      if (err instanceof PduFormatError && this.phase === 'full') {
        this.sendReject(err.reason, frame.bhs);
        return;
      }
      this.protocolFailure(err instanceof Error ? err.message : String(err));
      return;
    }
    if (this.phase === 'login') {
      if (pdu.opcode !== Op.LoginRequest) {
        this.protocolFailure(`opcode 0x${pdu.opcode.toString(16)} before login completed`);
        return;
      }
      this.onLogin(pdu);
      return;
    }
    if (!frame.dataDigestOk) {
      // RFC 7143 §7.8: a data digest error discards the PDU; at ERL 0 a lost Data-Out fails its command.
      this.sendReject(RejectReason.DataDigestError, frame.bhs);
      // §7.8 b): the target must still receive all of the command's data (the F bits of its
      // sequences) before answering CHECK CONDITION. The header is sound (its digest matched), so the
      // PDU still counts for its R2T; only its data is dropped. Failing the task at once answered
      // while the initiator was still sending, and its next Data-Out drew a second Reject.
      if (pdu.opcode === Op.DataOut) this.onDataOut(pdu, false);
      return;
    }
    this.onFullFeature(pdu);
  }

  // ----- login -----

  private onLogin(req: LoginRequest & { bhs: Buffer }): void {
    const { response, outcome, close, reason } = this.deps.negotiator.step(req);
    if (!this.statSNStarted) {
      // The first Login Response starts the connection's StatSN (§11.13.4); use the initiator's guess.
      this.statSN = req.expStatSN >>> 0;
      this.statSNStarted = true;
    }
    this.expCmdSN = req.cmdSN >>> 0;
    const status = (response.statusClass << 8) | response.statusDetail;
    if (status !== 0 || close) {
      this.sendLoginResponse(response);
      this.deps.hooks.onLoginRefused?.({ peerAddress: this.peerAddress, status, ...(reason ? { reason } : {}) });
      this.closeAfterFlush('login refused');
      return;
    }
    if (!outcome) {
      this.sendLoginResponse(response);
      return;
    }
    if (outcome.sessionType === 'Normal') {
      const entry = outcome.target ? this.deps.directory.entry(outcome.target.name) : undefined;
      if (!entry) {
        this.sendLoginResponse({ ...response, transit: false, statusClass: 2, statusDetail: 0x04, data: Buffer.alloc(0) });
        this.closeAfterFlush('target removed during login');
        return;
      }
      this.entry = entry;
    }
    if (outcome.tsih !== 0 && !this.deps.sessions.has(outcome.tsih)) {
      // Adding a connection to a session we do not know (e.g. after our restart): §11.13.5 0x020a.
      this.sendLoginResponse({ ...response, transit: false, statusClass: 2, statusDetail: 0x0a, data: Buffer.alloc(0) });
      this.closeAfterFlush('login named a session that does not exist');
      return;
    }
    // Registering may wait for a reinstated session's I/O to settle: hold further PDUs until then.
    this.busy = true;
    this.deps.socket.pause();
    const info = {
      type: outcome.sessionType,
      initiatorName: outcome.initiatorName,
      isid: outcome.isid.toString('hex'),
      peerAddress: this.peerAddress,
      ...(outcome.target ? { targetName: outcome.target.name } : {}),
      ...(outcome.chapUser ? { chapUser: outcome.chapUser } : {}),
    };
    this.deps.sessions.open(info, this).then(
      ({ tsih, reinstated }) => {
        if (this.phase === 'closed') {
          this.deps.sessions.remove(tsih, this);
          return;
        }
        this.outcome = outcome;
        this.params = outcome.params;
        this.session = { ...info, tsih, since: new Date() };
        this.sendLoginResponse({ ...response, tsih });
        // Digests and the negotiated segment size apply from the next PDU on (§13.1, §13.12).
        this.phase = 'full';
        this.digests = { header: outcome.params.headerDigest === 'CRC32C', data: outcome.params.dataDigest === 'CRC32C' };
        this.reader.limits = {
          headerDigest: this.digests.header,
          dataDigest: this.digests.data,
          maxDataSegmentLength: outcome.params.targetMaxRecvDataSegmentLength,
        };
        this.deps.hooks.onLogin?.(this.session, reinstated);
        this.busy = false;
        this.deps.socket.resume();
        this.drainFrames();
      },
      (err: unknown) => {
        this.busy = false;
        this.protocolFailure(`session registration failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  private sendLoginResponse(r: LoginResponse): void {
    const seq = this.sequence();
    this.statSN = snAdd(this.statSN, 1);
    this.write(encodeLoginResponse(r, seq, r.data.length), r.data);
  }

  // ----- full feature phase -----

  private onFullFeature(pdu: RequestPdu): void {
    const discovery = this.outcome?.sessionType === 'Discovery';
    switch (pdu.opcode) {
      case Op.ScsiCommand:
        if (discovery) {
          this.sendReject(RejectReason.ProtocolError, pdu.bhs);
          return;
        }
        this.onScsiCommand(pdu);
        return;
      case Op.DataOut:
        this.onDataOut(pdu);
        return;
      case Op.NopOut:
        if (pdu.itt === RESERVED_TAG) {
          // The answer to our ping; it carries no CmdSN worth checking.
          if (pdu.ttt === this.pingTtt) this.pingTtt = undefined;
          return;
        }
        this.sequenced(pdu.immediate, pdu.cmdSN, () => this.onNopOut(pdu));
        return;
      case Op.TextRequest:
        this.sequenced(pdu.immediate, pdu.cmdSN, () => this.onText(pdu));
        return;
      case Op.TaskManagementRequest:
        this.sequenced(pdu.immediate, pdu.cmdSN, () => this.onTaskManagement(pdu));
        return;
      case Op.LogoutRequest:
        this.sequenced(pdu.immediate, pdu.cmdSN, () => this.onLogout(pdu));
        return;
      case Op.Snack:
        // SNACK needs ErrorRecoveryLevel ≥ 1; we negotiate 0.
        this.sendReject(RejectReason.CommandNotSupported, pdu.bhs);
        return;
      case Op.LoginRequest:
        this.sendReject(RejectReason.ProtocolError, pdu.bhs);
        return;
    }
  }

  /**
   * CmdSN ordering (§4.2.2.1): non-immediate requests are delivered in CmdSN order; ones beyond
   * ExpCmdSN but inside the window wait; ones outside the window are silently ignored.
   */
  private sequenced(immediate: boolean, cmdSN: number, deliver: () => void): boolean {
    if (immediate) {
      deliver();
      return true;
    }
    if (cmdSN === this.expCmdSN) {
      this.expCmdSN = snAdd(this.expCmdSN, 1);
      deliver();
      this.deliverEarly();
      return true;
    }
    const max = this.maxCmdSN();
    if (snLess(this.expCmdSN, cmdSN) && !snLess(max, cmdSN) && !this.early.has(cmdSN)) {
      this.early.set(cmdSN, deliver);
      return true;
    }
    return false;
  }

  private deliverEarly(): void {
    for (let next = this.early.get(this.expCmdSN); next; next = this.early.get(this.expCmdSN)) {
      this.early.delete(this.expCmdSN);
      this.expCmdSN = snAdd(this.expCmdSN, 1);
      next();
    }
  }

  private onScsiCommand(pdu: ScsiCommandPdu): void {
    if (this.tasks.has(pdu.itt)) {
      this.sendReject(RejectReason.TaskInProgress, pdu.bhs);
      return;
    }
    const params = this.params!;
    const edtl = pdu.expectedLength;
    const task: Task = {
      itt: pdu.itt,
      pdu,
      lun: pdu.lun,
      received: 0,
      unsolicitedEnd: 0,
      nextUnsolicitedDataSN: 0,
      nextR2TOffset: 0,
      r2ts: new Map(),
      r2tSN: 0,
      dataPhaseError: false,
      ordered: false,
      started: false,
      aborted: false,
      refused: false,
    };
    const handler = this.entry?.luns.get(pdu.lun);
    if (handler) task.handler = handler;

    if (pdu.data.length > 0 && (!pdu.write || !params.immediateData || pdu.data.length > Math.min(edtl, params.firstBurstLength))) {
      this.sendReject(RejectReason.ProtocolError, pdu.bhs);
      return;
    }
    if (pdu.write && pdu.read) {
      // Bidirectional commands (XDWRITEREAD…) are not part of the block command set we serve.
      this.acceptOrdered(pdu, task);
      this.tasks.set(task.itt, task);
      task.refused = true;
      this.refuse(task, checkCondition(SenseCode.InvalidFieldInCdb));
      return;
    }
    const spdtl = handler?.writeLength?.(pdu.cdb);
    if (spdtl !== undefined && spdtl !== edtl) {
      // EDTL and the CDB disagree (RFC 7143 §11.4.5.1): the command runs on what both allow — all of
      // the CDB's data when EDTL is larger, the whole blocks EDTL covers when it is smaller — and the
      // residual says by how much they differed (what tgtd does and libiscsi's suite expects).
      task.writeResidual = spdtl > edtl
        ? { overflow: true, underflow: false, count: spdtl - edtl }
        : { overflow: false, underflow: true, count: edtl - spdtl };
      task.writeLength = spdtl > edtl ? edtl - (edtl % (handler?.blockSize ?? 512)) : spdtl;
    }
    if (pdu.write && edtl > 0) {
      const limit = handler ? handler.maxTransferBytes : 0;
      const unsolicitedEnd = pdu.final ? pdu.data.length : Math.min(edtl, params.firstBurstLength);
      // A command doomed whatever its data (bad CDB, out of range, read-only) fails before its
      // Data-Out is solicited; one too big to buffer (or for no such LUN) is never allocated.
      const refusal = !handler
        ? absentLunResult(pdu.cdb, this.lunList())
        : edtl > limit
          ? checkCondition(SenseCode.InvalidFieldInCdb)
          : handler.validate?.(pdu.cdb);
      if (refusal) {
        task.refused = true;
        task.unsolicitedEnd = unsolicitedEnd;
        this.tasks.set(task.itt, task);
        if (!this.acceptOrdered(pdu, task)) {
          this.tasks.delete(task.itt);
          return;
        }
        this.refuse(task, refusal);
        return;
      }
      task.buffer = Buffer.allocUnsafe(edtl);
      pdu.data.copy(task.buffer, 0);
      task.received = pdu.data.length;
      task.unsolicitedEnd = unsolicitedEnd;
      task.nextR2TOffset = unsolicitedEnd;
    }
    this.tasks.set(task.itt, task);
    if (!this.acceptOrdered(pdu, task)) {
      this.tasks.delete(task.itt);
      return;
    }
    this.sendR2Ts(task);
    this.maybeStart(task);
  }

  /** Runs the command through CmdSN ordering; false when it was outside the window (ignored). */
  private acceptOrdered(pdu: ScsiCommandPdu, task: Task): boolean {
    return this.sequenced(pdu.immediate, pdu.cmdSN, () => {
      task.ordered = true;
      this.maybeStart(task);
    });
  }

  private sendR2Ts(task: Task): void {
    if (!task.buffer || task.refused || task.aborted) return;
    const params = this.params!;
    const edtl = task.buffer.length;
    while (task.nextR2TOffset < edtl && task.r2ts.size < params.maxOutstandingR2T) {
      const length = Math.min(params.maxBurstLength, edtl - task.nextR2TOffset);
      const ttt = this.allocateTtt();
      const r2t: R2TState = { offset: task.nextR2TOffset, length, received: 0, nextDataSN: 0 };
      task.r2ts.set(ttt, r2t);
      task.nextR2TOffset += length;
      const bhs = encodeR2T(
        { itt: task.itt, lun: task.lun, ttt, r2tSN: task.r2tSN++, bufferOffset: r2t.offset, length },
        this.sequence(),
      );
      this.write(bhs);
    }
  }

  private onDataOut(pdu: DataOutPdu, intact = true): void {
    const task = this.tasks.get(pdu.itt);
    if (!task) {
      // Data for a task that is gone (aborted, or never existed): drop it quietly if it was aborted.
      // Solicited data of an aborted task is recognised by the TTT of an R2T it still had open: the
      // initiator may answer R2Ts it received before the abort (§11.5.1), which is no protocol error.
      if (pdu.ttt === RESERVED_TAG) return;
      if (this.abortedTtts.has(pdu.ttt)) {
        if (pdu.final) this.abortedTtts.delete(pdu.ttt);
        return;
      }
      this.sendReject(RejectReason.InvalidPduField, pdu.bhs);
      return;
    }
    const length = pdu.data.length;
    if (task.refused) {
      // Swallow the unsolicited burst of a refused command, then let it go.
      if (pdu.final) this.finishRefused(task);
      return;
    }
    if (!task.buffer || pdu.bufferOffset + length > task.buffer.length) {
      this.sendReject(RejectReason.ProtocolError, pdu.bhs);
      this.failTask(task);
      return;
    }
    if (pdu.ttt === RESERVED_TAG) {
      if (pdu.dataSN !== task.nextUnsolicitedDataSN || pdu.bufferOffset + length > task.unsolicitedEnd) task.dataPhaseError = true;
      task.nextUnsolicitedDataSN++;
    } else {
      const r2t = task.r2ts.get(pdu.ttt);
      if (!r2t) {
        this.sendReject(RejectReason.InvalidPduField, pdu.bhs);
        return;
      }
      if (pdu.dataSN !== r2t.nextDataSN || pdu.bufferOffset < r2t.offset || pdu.bufferOffset + length > r2t.offset + r2t.length) {
        task.dataPhaseError = true;
      }
      r2t.nextDataSN++;
      r2t.received += length;
      if (r2t.received >= r2t.length || pdu.final) task.r2ts.delete(pdu.ttt);
    }
    // The frame reader may have received the data in place already (see dataOutTarget).
    const placed = pdu.data.buffer === task.buffer.buffer && pdu.data.byteOffset === task.buffer.byteOffset + pdu.bufferOffset;
    if (intact && !placed) pdu.data.copy(task.buffer, pdu.bufferOffset);
    else if (!intact) task.dataPhaseError = true;
    task.received += length;
    this.sendR2Ts(task);
    this.maybeStart(task);
  }

  /**
   * The frame reader's dataTarget: a Data-Out that onDataOut will take as in sequence is received
   * straight into its command's buffer, saving a gathered copy that would be copied again. Anything
   * else gets a buffer of its own, so a PDU that is then rejected never overwrites data received.
   */
  private dataOutTarget(bhs: Buffer, dataLength: number): Buffer | undefined {
    if ((bhs[0]! & 0x3f) !== Op.DataOut || this.phase !== 'full') return undefined;
    const pdu = decodeRequest(bhs, EMPTY, EMPTY) as DataOutPdu;
    const task = this.tasks.get(pdu.itt);
    if (!task?.buffer || task.refused || task.aborted || task.dataPhaseError) return undefined;
    const end = pdu.bufferOffset + dataLength;
    if (end > task.buffer.length) return undefined;
    if (pdu.ttt === RESERVED_TAG) {
      if (pdu.dataSN !== task.nextUnsolicitedDataSN || end > task.unsolicitedEnd) return undefined;
    } else {
      const r2t = task.r2ts.get(pdu.ttt);
      if (!r2t || pdu.dataSN !== r2t.nextDataSN || pdu.bufferOffset < r2t.offset || end > r2t.offset + r2t.length) return undefined;
    }
    return task.buffer.subarray(pdu.bufferOffset, end);
  }

  private maybeStart(task: Task): void {
    if (!task.ordered || task.started || task.aborted || task.refused) return;
    if (task.buffer && (task.received < task.buffer.length || task.r2ts.size > 0 || task.nextR2TOffset < task.buffer.length)) return;
    task.started = true;
    const run = this.execute(task).finally(() => this.inflight.delete(run));
    task.execution = run;
    this.inflight.add(run);
  }

  private async execute(task: Task): Promise<void> {
    const { pdu } = task;
    let result: ScsiResult;
    const started = process.hrtime.bigint();
    if (task.dataPhaseError) {
      result = checkCondition(SenseCode.DataPhaseError);
    } else if (!task.handler) {
      // REPORT LUNS, INQUIRY and REQUEST SENSE still answer on a LUN that does not exist (SPC-4).
      result = absentLunResult(pdu.cdb, this.lunList());
    } else {
      try {
        result = await task.handler.execute({
          cdb: pdu.cdb,
          expectedLength: pdu.expectedLength,
          ...(task.buffer ? { dataOut: task.writeLength !== undefined ? task.buffer.subarray(0, task.writeLength) : task.buffer } : {}),
        });
      } catch {
        // The SCSI layer promises never to throw; if it does, the initiator still gets an answer.
        result = checkCondition(SenseCode.InternalTargetFailure);
      }
    }
    if (task.aborted || this.phase === 'closed') return;
    this.tasks.delete(task.itt);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const kind = pdu.read ? 'read' : pdu.write ? 'write' : 'other';
    const bytes = pdu.read ? Math.min(result.dataIn?.length ?? 0, pdu.expectedLength) : (task.buffer?.length ?? 0);
    this.deps.hooks.onCommand?.(this.session?.targetName ?? '', task.lun, kind, bytes, seconds);
    this.respond(task, result);
  }

  private lunList(): number[] {
    return this.entry ? [...this.entry.luns.keys()].sort((a, b) => a - b) : [];
  }

  private respond(task: Task, result: ScsiResult): void {
    const { pdu } = task;
    const edtl = pdu.expectedLength;
    const produced = result.dataIn?.length ?? 0;
    let residual: Residual = NO_RESIDUAL;
    let data = result.dataIn;
    if (pdu.read || produced > 0) {
      if (produced > edtl) {
        residual = { overflow: true, underflow: false, count: produced - edtl };
        data = data!.subarray(0, edtl);
      } else if (produced < edtl) {
        residual = { overflow: false, underflow: true, count: edtl - produced };
      }
    } else if (task.writeResidual) {
      residual = task.writeResidual;
    } else if (!pdu.write && edtl > 0) {
      // A command that moves no data while the initiator expected some: all of it is residual.
      residual = { overflow: false, underflow: true, count: edtl };
    }
    const good = result.status === ScsiStatus.Good && !result.sense;
    if (data && data.length > 0 && pdu.read) {
      const dataSNs = this.sendDataIn(task, data, good ? { status: result.status, residual } : undefined);
      if (good) return;
      this.sendScsiResponse(task, result, residual, dataSNs);
      return;
    }
    this.sendScsiResponse(task, result, residual, task.r2tSN);
  }

  /** Data-In PDUs no larger than the initiator's MaxRecvDataSegmentLength; returns how many were sent. */
  private sendDataIn(task: Task, data: Buffer, status: { status: number; residual: Residual } | undefined): number {
    const params = this.params!;
    const segment = Math.max(512, Math.min(params.initiatorMaxRecvDataSegmentLength, params.maxBurstLength));
    const socket = this.deps.socket;
    socket.cork();
    let dataSN = 0;
    let burstLimit = Math.min(params.maxBurstLength, data.length);
    for (let offset = 0; offset < data.length; ) {
      // A Data-In sequence (ended by F) carries at most MaxBurstLength (§13.13), so a segment never
      // crosses a burst boundary: with a segment size that does not divide MaxBurstLength, cutting
      // the data in plain segments made sequences longer than the initiator agreed to.
      const chunk = data.subarray(offset, Math.min(offset + segment, burstLimit));
      const last = offset + chunk.length >= data.length;
      // F marks the end of a burst (MaxBurstLength) and of the whole transfer (§11.7.1).
      const burstEnd = offset + chunk.length === burstLimit;
      const withStatus = last && status ? status : undefined;
      const seq = this.sequence();
      const bhs = encodeDataIn(
        { itt: task.itt, lun: task.lun, final: burstEnd, dataSN: dataSN++, bufferOffset: offset, ...(withStatus ? { status: withStatus } : {}) },
        seq,
        chunk.length,
      );
      if (withStatus) this.statSN = snAdd(this.statSN, 1);
      this.write(bhs, chunk, false);
      offset += chunk.length;
      if (burstEnd) burstLimit = Math.min(burstLimit + params.maxBurstLength, data.length);
    }
    socket.uncork();
    this.applyBackpressure();
    return dataSN;
  }

  private sendScsiResponse(task: Task, result: ScsiResult, residual: Residual, expDataSN: number): void {
    const data = result.status === ScsiStatus.CheckCondition && result.sense ? senseSegment(result.sense) : undefined;
    const seq = this.sequence();
    this.statSN = snAdd(this.statSN, 1);
    this.write(
      encodeScsiResponse({ itt: task.itt, status: result.status, residual, expDataSN }, seq, data?.length ?? 0),
      data,
    );
  }

  private refuse(task: Task, result: ScsiResult, residual: Residual = NO_RESIDUAL): void {
    // Answer at once; unsolicited data still on its way is swallowed by onDataOut.
    const unsolicitedPending = task.pdu.write && !task.pdu.final;
    this.sendScsiResponse(task, result, residual, 0);
    if (!unsolicitedPending) this.tasks.delete(task.itt);
  }

  private finishRefused(task: Task): void {
    this.tasks.delete(task.itt);
  }

  private failTask(task: Task): void {
    task.dataPhaseError = true;
    task.r2ts.clear();
    if (task.buffer) task.nextR2TOffset = task.buffer.length;
    task.received = task.buffer?.length ?? 0;
    this.maybeStart(task);
  }

  private onNopOut(pdu: NopOutPdu): void {
    const params = this.params!;
    const echo = pdu.data.subarray(0, params.initiatorMaxRecvDataSegmentLength);
    const seq = this.sequence();
    this.statSN = snAdd(this.statSN, 1);
    this.write(encodeNopIn({ itt: pdu.itt, ttt: RESERVED_TAG, lun: pdu.lun }, seq, echo.length), echo);
  }

  private onText(pdu: TextRequestPdu): void {
    const outcome = this.outcome!;
    const visible = outcome.sessionType === 'Discovery' ? outcome.visibleTargets : outcome.target ? [outcome.target] : [];
    const answer = sendTargetsResponse(pdu.data, visible, this.params!.initiatorMaxRecvDataSegmentLength);
    const seq = this.sequence();
    this.statSN = snAdd(this.statSN, 1);
    this.write(encodeTextResponse({ itt: pdu.itt, ttt: RESERVED_TAG, lun: 0, final: true, continue: false }, seq, answer.length), answer);
  }

  private onTaskManagement(pdu: TaskManagementRequestPdu): void {
    const victims: Task[] = [];
    let response: number = TmfResponse.Complete;
    switch (pdu.function) {
      case TmfFunction.AbortTask: {
        const task = this.tasks.get(pdu.referencedTaskTag);
        if (task && task.lun === pdu.lun) victims.push(task);
        else if (!task) {
          // §11.6.1: a task that already completed (RefCmdSN before ExpCmdSN) is "function complete".
          // So is one we never saw although its CmdSN lies in the window before the TMF's (§11.5.1 b,
          // e.g. a command discarded for a data digest error): its CmdSN counts as received, or every
          // later command would wait behind the gap until the initiator dropped the session.
          response =
            snLess(pdu.refCmdSN, this.expCmdSN) || this.considerReceived(pdu.refCmdSN, pdu.cmdSN)
              ? TmfResponse.Complete
              : TmfResponse.TaskDoesNotExist;
        }
        break;
      }
      case TmfFunction.AbortTaskSet:
      case TmfFunction.ClearTaskSet:
      case TmfFunction.LogicalUnitReset:
        if (!this.entry?.luns.has(pdu.lun)) response = TmfResponse.LunDoesNotExist;
        for (const t of this.tasks.values()) if (t.lun === pdu.lun && t.itt !== pdu.itt) victims.push(t);
        break;
      case TmfFunction.TargetWarmReset:
      case TmfFunction.TargetColdReset:
        victims.push(...this.tasks.values());
        break;
      case TmfFunction.TaskReassign:
        response = TmfResponse.ReassignmentNotSupported;
        break;
      default:
        response = TmfResponse.NotSupported;
    }
    for (const t of victims) this.abortTask(t);
    // The response follows the termination of every affected task (§4.2.3.4): wait for their I/O.
    const pending = victims.map((t) => t.execution).filter((p): p is Promise<void> => p !== undefined);
    void Promise.allSettled(pending).then(() => {
      if (this.phase === 'closed') return;
      const seq = this.sequence();
      this.statSN = snAdd(this.statSN, 1);
      this.write(encodeTaskManagementResponse({ itt: pdu.itt, response }, seq));
      if (pdu.function === TmfFunction.TargetColdReset && response === TmfResponse.Complete) this.closeAfterFlush('target cold reset');
    });
  }

  /** Marks a CmdSN that never arrived as received (§11.5.1 b); false when the RFC does not allow it. */
  private considerReceived(cmdSN: number, tmfCmdSN: number): boolean {
    if (!snLess(cmdSN, tmfCmdSN) || snLess(cmdSN, this.expCmdSN) || snLess(this.maxCmdSN(), cmdSN)) return false;
    if (cmdSN === this.expCmdSN) {
      this.expCmdSN = snAdd(this.expCmdSN, 1);
      this.deliverEarly();
      return true;
    }
    if (this.early.has(cmdSN)) return false; // something else holds that CmdSN
    this.early.set(cmdSN, () => undefined);
    return true;
  }

  private abortTask(task: Task): void {
    task.aborted = true;
    for (const ttt of task.r2ts.keys()) this.abortedTtts.add(ttt);
    // An initiator that never finishes those sequences must not grow the set without bound.
    for (const ttt of this.abortedTtts) {
      if (this.abortedTtts.size <= MAX_ABORTED_TTTS) break;
      this.abortedTtts.delete(ttt);
    }
    this.tasks.delete(task.itt);
  }

  private abortAll(): void {
    for (const t of this.tasks.values()) t.aborted = true;
    this.tasks.clear();
    this.early.clear();
  }

  private onLogout(pdu: LogoutRequestPdu): void {
    // Reason 2 (remove the connection for recovery) needs ERL 2.
    const response = pdu.reason === 2 ? 2 : 0;
    const seq = this.sequence();
    this.statSN = snAdd(this.statSN, 1);
    this.write(encodeLogoutResponse({ itt: pdu.itt, response, time2Wait: 0, time2Retain: 0 }, seq));
    if (response === 0) this.closeAfterFlush('logout');
  }

  // ----- output -----

  private sequence(): SequenceNumbers {
    return { statSN: this.statSN, expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN() };
  }

  private maxCmdSN(): number {
    return snAdd(this.expCmdSN, this.deps.options.commandWindow - 1);
  }

  private allocateTtt(): number {
    const ttt = this.nextTtt;
    this.nextTtt = this.nextTtt >= 0xfffffffe ? 1 : this.nextTtt + 1;
    return ttt;
  }

  private write(bhs: Buffer, data?: Buffer, checkPressure = true): void {
    if (this.phase === 'closed') return;
    const socket = this.deps.socket;
    if (!this.corked) {
      // Everything written until the event loop's check phase leaves in one writev: with many
      // commands in flight their completions arrive together, and a syscall (and a wakeup of the
      // peer) per response cost more than a small response itself. A lone response waits for
      // nothing: the check phase follows the callback that wrote it in the same loop turn.
      this.corked = true;
      socket.cork();
      setImmediate(this.uncork);
    }
    for (const part of framePdu(bhs, data, this.digests)) socket.write(part);
    if (checkPressure) this.applyBackpressure();
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.deps.socket.uncork();
  };

  /** An initiator that does not read its responses must not grow our memory without bound. */
  private applyBackpressure(): void {
    const socket = this.deps.socket;
    if (socket.writableLength > this.deps.options.sendHighWater) socket.pause();
  }

  private sendReject(reason: number, rejected: Buffer): void {
    const seq = this.sequence();
    this.statSN = snAdd(this.statSN, 1);
    this.write(encodeReject(reason, seq), Buffer.from(rejected.subarray(0, 48)));
  }

  private checkAlive(): void {
    if (this.phase !== 'full') return;
    const now = Date.now();
    const { nopInterval, nopTimeout } = this.deps.options;
    if (this.pingTtt !== undefined) {
      if (now - this.lastReceive > nopTimeout && now - this.pingSentAt > nopTimeout) {
        this.terminate('initiator did not answer NOP-In pings').catch(() => undefined);
      }
      return;
    }
    // Only a command in storage keeps a live initiator legitimately quiet. Tasks waiting for the
    // initiator's data used to suppress the ping too, so an initiator that died in the middle of a
    // write (R2T open) was never pinged, never dropped, and held its session and buffers forever.
    if (now - this.lastReceive < nopInterval || this.executing()) return;
    this.pingTtt = this.allocateTtt();
    this.pingSentAt = now;
    // A ping: ITT reserved, TTT ours; it does not advance StatSN (§11.19).
    this.write(encodeNopIn({ itt: RESERVED_TAG, ttt: this.pingTtt, lun: 0 }, this.sequence(), 0));
  }

  private executing(): boolean {
    for (const t of this.tasks.values()) if (t.started) return true;
    return false;
  }

  private protocolFailure(message: string): void {
    this.deps.hooks.onProtocolError?.(this.peerAddress, message);
    this.endReason = `protocol error: ${message}`;
    this.abortAll();
    this.deps.socket.destroy();
  }

  private closeAfterFlush(reason: string): void {
    this.endReason = reason;
    this.phase = 'closed';
    this.abortAll();
    this.deps.socket.end();
    // A peer that never reads must not keep the socket half-open forever.
    setTimeout(() => this.deps.socket.destroy(), 5000).unref();
  }

  private end(reason: string): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    this.abortAll();
    const wasOpen = this.phase !== 'closed' || this.session !== undefined;
    this.phase = 'closed';
    if (this.session && wasOpen) {
      const session = this.session;
      this.session = undefined;
      this.deps.sessions.remove(session.tsih, this);
      this.deps.hooks.onSessionEnd?.(session, reason);
    }
    this.resolveClosed();
  }
}
