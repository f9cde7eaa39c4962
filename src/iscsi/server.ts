// The iSCSI portal: a TCP listener (3260 by default) handing each connection to IscsiConnection.
// A connection's failure is its own: parse errors, digest errors and bugs close that socket only.

import net from 'node:net';
import {
  DEFAULT_CONNECTION_OPTIONS,
  IscsiConnection,
  type ConnectionHooks,
  type ConnectionOptions,
  type LoginStepper,
} from './connection.js';
import { SessionTable } from './sessions.js';
import type { TargetDirectory } from './target.js';

export interface IscsiServerOptions {
  directory: TargetDirectory;
  createNegotiator: () => LoginStepper;
  hooks?: ConnectionHooks;
  connection?: Partial<ConnectionOptions>;
  /** Connections beyond this are refused at accept (a login storm must not exhaust memory). */
  maxConnections?: number;
}

export class IscsiServer {
  readonly sessions = new SessionTable();
  private readonly server: net.Server;
  private readonly connections = new Set<IscsiConnection>();
  private readonly options: ConnectionOptions;

  constructor(private readonly opts: IscsiServerOptions) {
    this.options = { ...DEFAULT_CONNECTION_OPTIONS, ...opts.connection };
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.maxConnections = opts.maxConnections ?? 1024;
  }

  private accept(socket: net.Socket): void {
    const connection = new IscsiConnection({
      socket,
      directory: this.opts.directory,
      sessions: this.sessions,
      negotiator: this.opts.createNegotiator(),
      hooks: this.opts.hooks ?? {},
      options: this.options,
    });
    this.connections.add(connection);
    socket.on('close', () => this.connections.delete(connection));
  }

  async listen(host: string, port: number): Promise<{ address: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as net.AddressInfo;
    return { address: address.address, port: address.port };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops accepting, closes every connection and waits for their storage I/O to settle. */
  async close(): Promise<void> {
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.connections].map((c) => c.terminate('target shutting down')));
    await closing;
  }
}
