// The session table: one entry per (initiator, ISID, target), the I_T nexus of RFC 7143 §4.4.2.
// A login with TSIH 0 and the ISID of a live session is a session reinstatement (§6.3.5): it is how
// open-iscsi recovers after a network blip or a restart of this daemon, since it always logs in with
// TSIH 0. The old connection is closed and its in-flight storage I/O settles before the new session
// is allowed to start, so a write of the old session can never land after one of the new.

export interface SessionConnection {
  /** Closes the connection and resolves once none of its I/O is in flight any more. */
  terminate(reason: string): Promise<void>;
}

export interface SessionInfo {
  tsih: number;
  type: 'Normal' | 'Discovery';
  initiatorName: string;
  isid: string;
  targetName?: string;
  peerAddress: string;
  chapUser?: string;
  since: Date;
}

interface Entry {
  info: SessionInfo;
  connection: SessionConnection;
}

export class SessionTable {
  private readonly byTsih = new Map<number, Entry>();
  private readonly byNexus = new Map<string, Entry>();
  /** The last registration of each nexus still under way (see open()). */
  private readonly opening = new Map<string, Promise<unknown>>();
  private nextTsih = 1;

  private static nexus(initiatorName: string, isid: string, targetName: string | undefined): string {
    return `${initiatorName}\u0000${isid}\u0000${targetName ?? ''}`;
  }

  /**
   * Registers a new session, reinstating (closing) any existing one of the same nexus first.
   * Resolves with the new TSIH and whether an old session was replaced.
   */
  async open(
    info: Omit<SessionInfo, 'tsih' | 'since'>,
    connection: SessionConnection,
  ): Promise<{ tsih: number; reinstated: boolean }> {
    const key = SessionTable.nexus(info.initiatorName, info.isid, info.targetName);
    // Registrations of one nexus run one after the other. Without this, a second login arriving while
    // the first waited for the old session's I/O found no entry (the old one was already removed, the
    // new one not yet added), registered at once — before that I/O had settled — and then lived on
    // next to the first: two sessions of one I_T nexus. In turn, the later login replaces the earlier.
    const previous = this.opening.get(key) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(() => this.register(key, info, connection));
    this.opening.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.opening.get(key) === mine) this.opening.delete(key);
    }
  }

  private async register(
    key: string,
    info: Omit<SessionInfo, 'tsih' | 'since'>,
    connection: SessionConnection,
  ): Promise<{ tsih: number; reinstated: boolean }> {
    const old = this.byNexus.get(key);
    if (old) {
      this.remove(old.info.tsih, old.connection);
      await old.connection.terminate('session reinstated by a new login with the same ISID');
    }
    const tsih = this.allocateTsih();
    const entry: Entry = { info: { ...info, tsih, since: new Date() }, connection };
    this.byTsih.set(tsih, entry);
    this.byNexus.set(key, entry);
    return { tsih, reinstated: old !== undefined };
  }

  /** Forgets a session (after logout or connection loss) if `connection` still owns it. */
  remove(tsih: number, connection: SessionConnection): void {
    const entry = this.byTsih.get(tsih);
    if (!entry || entry.connection !== connection) return;
    this.byTsih.delete(tsih);
    const key = SessionTable.nexus(entry.info.initiatorName, entry.info.isid, entry.info.targetName);
    if (this.byNexus.get(key) === entry) this.byNexus.delete(key);
  }

  has(tsih: number): boolean {
    return this.byTsih.has(tsih);
  }

  list(): SessionInfo[] {
    return [...this.byTsih.values()].map((e) => e.info);
  }

  /** Sessions of one target (for "is this host logged in from this IP" checks and target removal). */
  forTarget(targetName: string): SessionInfo[] {
    return this.list().filter((s) => s.targetName === targetName);
  }

  /** Closes every session of a target (the target was removed or its credentials rotated). */
  async closeTarget(targetName: string, reason: string): Promise<void> {
    const victims = [...this.byTsih.values()].filter((e) => e.info.targetName === targetName);
    for (const v of victims) this.remove(v.info.tsih, v.connection);
    await Promise.all(victims.map((v) => v.connection.terminate(reason)));
  }

  async closeAll(reason: string): Promise<void> {
    const all = [...this.byTsih.values()];
    this.byTsih.clear();
    this.byNexus.clear();
    await Promise.all(all.map((e) => e.connection.terminate(reason)));
  }

  get size(): number {
    return this.byTsih.size;
  }

  private allocateTsih(): number {
    // TSIH is 16 bits and 0 is reserved; skip values still in use after a wrap.
    for (let i = 0; i < 0x10000; i++) {
      const tsih = this.nextTsih;
      this.nextTsih = this.nextTsih >= 0xffff ? 1 : this.nextTsih + 1;
      if (!this.byTsih.has(tsih)) return tsih;
    }
    throw new Error('no free TSIH: 65535 sessions are open');
  }
}
