// The contract between the SCSI layer and a LUN's storage. Offsets and lengths are in bytes and always
// multiples of blockSize; the SCSI layer checks ranges before calling. Every method resolves only when
// the operation is complete: a resolved write() is in the backing store (page cache at least), and a
// resolved flush() or write(…, { fua: true }) is on stable storage (fdatasync or the backend's equivalent).

export interface BlockExtent {
  /** Byte offset of the extent. */
  offset: number;
  /** Byte length of the extent. */
  length: number;
  /** false when the range is deallocated (a hole: reads return zeroes and it uses no space). */
  mapped: boolean;
}

export interface BlockDevice {
  /** Logical block size in bytes (512 for every backend we ship: iPXE and BIOS INT 13h expect it). */
  readonly blockSize: number;
  /** Size of the device in bytes (a multiple of blockSize). */
  readonly size: number;
  readonly readOnly: boolean;
  /** Whether discard() really frees space (thin provisioning; reported in VPD B2 / READ CAPACITY 16). */
  readonly thin: boolean;

  read(offset: number, length: number): Promise<Buffer>;
  write(offset: number, data: Buffer, options?: { fua?: boolean }): Promise<void>;
  /** Everything written before the call is on stable storage when the promise resolves. */
  flush(): Promise<void>;
  /** Deallocates the range: later reads return zeroes. */
  discard(offset: number, length: number): Promise<void>;
  /** Allocation status from `offset` on, covering at least one extent (GET LBA STATUS). */
  extents(offset: number, length: number): Promise<BlockExtent[]>;
  close(): Promise<void>;
}
