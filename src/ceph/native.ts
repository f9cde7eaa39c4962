import koffi from 'koffi';
import { PoolCalls } from '../pool-calls.js';

/**
 * librados.so.2 and librbd.so.1 through koffi, loaded on first use (Debian: librados2, librbd1;
 * written against Ceph 16 "Pacific", librbd API 1.16, and only calls that Quincy and Reef keep).
 *
 * Types are anonymous koffi types (no global type names), so loading this module twice in one process
 * (test runners re-evaluate modules) does not collide. Each handle kind is its own opaque pointer
 * type: koffi refuses an image handle where an io context is expected.
 *
 * THREADS. Calls that wait on the network (connect, open, create, clone, snapshots, lock acquisition,
 * close…) run through `.async` on a libuv worker (callAsync below), never on the event loop: besides
 * freezing every LUN, a librbd call made on the main thread can deadlock, because librbd's completion
 * callbacks (aio.ts) are relayed to the main thread and block librbd's own threads until they have
 * run. On the event loop we only call what touches memory: aio submission, completion results,
 * option setting, size and feature queries.
 */

type CFunction = ReturnType<koffi.IKoffiLib['func']>;

const radosT = koffi.pointer(koffi.opaque());
const ioctxT = koffi.pointer(koffi.opaque());
const imageT = koffi.pointer(koffi.opaque());
const optionsT = koffi.pointer(koffi.opaque());
export const completionT = koffi.pointer(koffi.opaque());

/** void (*rbd_callback_t)(rbd_completion_t, void *arg); arg carries a number of ours. */
export const aioCallbackT = koffi.proto('void', [completionT, 'uintptr_t']);
/** int (*cb)(uint64_t offset, size_t length, int exists, void *arg) of rbd_diff_iterate2. */
export const diffCallbackT = koffi.proto('int', ['uint64_t', 'size_t', 'int', 'uintptr_t']);

/** int (*librbd_progress_fn_t)(uint64_t offset, uint64_t total, void *arg): librbd calls it whatever we want. */
export const progressCallbackT = koffi.proto('int', ['uint64_t', 'uint64_t', 'uintptr_t']);

/** rbd_image_info_t (librbd.h). */
export const imageInfoT = koffi.struct({
  size: 'uint64_t',
  obj_size: 'uint64_t',
  num_objs: 'uint64_t',
  order: 'int',
  block_name_prefix: koffi.array('char', 24),
  parent_pool: 'int64_t',
  parent_name: koffi.array('char', 96),
});

/** rbd_snap_info_t (librbd.h). */
export const snapInfoT = koffi.struct({ id: 'uint64_t', size: 'uint64_t', name: 'str' });

const out = (t: koffi.IKoffiCType | string) => koffi.out(koffi.pointer(t));
const inout = (t: koffi.IKoffiCType | string) => koffi.inout(koffi.pointer(t));

function declare(rados: koffi.IKoffiLib, rbd: koffi.IKoffiLib) {
  const f = (lib: koffi.IKoffiLib, name: string, result: koffi.IKoffiCType | string, args: (koffi.IKoffiCType | string)[]) =>
    lib.func(name, result, args);
  return {
    rados_create2: f(rados, 'rados_create2', 'int', [out(radosT), 'str', 'str', 'uint64_t']),
    rados_conf_read_file: f(rados, 'rados_conf_read_file', 'int', [radosT, 'str']),
    rados_conf_set: f(rados, 'rados_conf_set', 'int', [radosT, 'str', 'str']),
    rados_conf_get: f(rados, 'rados_conf_get', 'int', [radosT, 'str', 'void *', 'size_t']),
    rados_connect: f(rados, 'rados_connect', 'int', [radosT]),
    rados_shutdown: f(rados, 'rados_shutdown', 'void', [radosT]),
    rados_get_instance_id: f(rados, 'rados_get_instance_id', 'uint64_t', [radosT]),
    rados_ioctx_create: f(rados, 'rados_ioctx_create', 'int', [radosT, 'str', out(ioctxT)]),
    rados_ioctx_destroy: f(rados, 'rados_ioctx_destroy', 'void', [ioctxT]),

    rbd_version: f(rbd, 'rbd_version', 'void', [out('int'), out('int'), out('int')]),
    rbd_image_options_create: f(rbd, 'rbd_image_options_create', 'void', [out(optionsT)]),
    rbd_image_options_destroy: f(rbd, 'rbd_image_options_destroy', 'void', [optionsT]),
    rbd_image_options_set_uint64: f(rbd, 'rbd_image_options_set_uint64', 'int', [optionsT, 'int', 'uint64_t']),
    rbd_list: f(rbd, 'rbd_list', 'int', [ioctxT, 'void *', inout('size_t')]),
    rbd_create4: f(rbd, 'rbd_create4', 'int', [ioctxT, 'str', 'uint64_t', optionsT]),
    rbd_clone3: f(rbd, 'rbd_clone3', 'int', [ioctxT, 'str', 'str', ioctxT, 'str', optionsT]),
    rbd_remove: f(rbd, 'rbd_remove', 'int', [ioctxT, 'str']),
    rbd_open: f(rbd, 'rbd_open', 'int', [ioctxT, 'str', out(imageT), 'str']),
    rbd_open_read_only: f(rbd, 'rbd_open_read_only', 'int', [ioctxT, 'str', out(imageT), 'str']),
    rbd_close: f(rbd, 'rbd_close', 'int', [imageT]),
    rbd_stat: f(rbd, 'rbd_stat', 'int', [imageT, out(imageInfoT), 'size_t']),
    rbd_get_size: f(rbd, 'rbd_get_size', 'int', [imageT, out('uint64_t')]),
    rbd_get_features: f(rbd, 'rbd_get_features', 'int', [imageT, out('uint64_t')]),
    rbd_get_parent_info2: f(rbd, 'rbd_get_parent_info2', 'int', [
      imageT, 'void *', 'size_t', 'void *', 'size_t', 'void *', 'size_t', 'void *', 'size_t',
    ]),
    rbd_resize2: f(rbd, 'rbd_resize2', 'int', [imageT, 'uint64_t', 'bool', koffi.pointer(progressCallbackT), 'uintptr_t']),
    rbd_flush: f(rbd, 'rbd_flush', 'int', [imageT]),

    rbd_snap_create: f(rbd, 'rbd_snap_create', 'int', [imageT, 'str']),
    rbd_snap_remove: f(rbd, 'rbd_snap_remove', 'int', [imageT, 'str']),
    rbd_snap_protect: f(rbd, 'rbd_snap_protect', 'int', [imageT, 'str']),
    rbd_snap_unprotect: f(rbd, 'rbd_snap_unprotect', 'int', [imageT, 'str']),
    rbd_snap_is_protected: f(rbd, 'rbd_snap_is_protected', 'int', [imageT, 'str', out('int')]),
    rbd_snap_list: f(rbd, 'rbd_snap_list', 'int', [imageT, 'void *', inout('int')]),
    rbd_snap_list_end: f(rbd, 'rbd_snap_list_end', 'void', ['void *']),

    rbd_lock_acquire: f(rbd, 'rbd_lock_acquire', 'int', [imageT, 'int']),
    rbd_lock_release: f(rbd, 'rbd_lock_release', 'int', [imageT]),
    rbd_is_exclusive_lock_owner: f(rbd, 'rbd_is_exclusive_lock_owner', 'int', [imageT, out('int')]),
    rbd_lock_get_owners: f(rbd, 'rbd_lock_get_owners', 'int', [imageT, out('int'), 'void *', inout('size_t')]),
    rbd_lock_get_owners_cleanup: f(rbd, 'rbd_lock_get_owners_cleanup', 'void', ['void *', 'size_t']),

    rbd_aio_create_completion: f(rbd, 'rbd_aio_create_completion', 'int', ['uintptr_t', koffi.pointer(aioCallbackT), out(completionT)]),
    rbd_aio_get_return_value: f(rbd, 'rbd_aio_get_return_value', 'int64_t', [completionT]),
    rbd_aio_release: f(rbd, 'rbd_aio_release', 'void', [completionT]),
    rbd_aio_read: f(rbd, 'rbd_aio_read', 'int', [imageT, 'uint64_t', 'size_t', 'void *', completionT]),
    rbd_aio_write: f(rbd, 'rbd_aio_write', 'int', [imageT, 'uint64_t', 'size_t', 'void *', completionT]),
    rbd_aio_flush: f(rbd, 'rbd_aio_flush', 'int', [imageT, completionT]),
    rbd_aio_discard: f(rbd, 'rbd_aio_discard', 'int', [imageT, 'uint64_t', 'uint64_t', completionT]),
    rbd_aio_write_zeroes: f(rbd, 'rbd_aio_write_zeroes', 'int', [imageT, 'uint64_t', 'size_t', completionT, 'int', 'int']),
    rbd_aio_writesame: f(rbd, 'rbd_aio_writesame', 'int', [imageT, 'uint64_t', 'size_t', 'void *', 'size_t', completionT, 'int']),
    rbd_diff_iterate2: f(rbd, 'rbd_diff_iterate2', 'int', [
      imageT, 'str', 'uint64_t', 'uint64_t', 'uint8_t', 'uint8_t', koffi.pointer(diffCallbackT), 'uintptr_t',
    ]),
  } satisfies Record<string, CFunction>;
}

export type CephNative = ReturnType<typeof declare>;

let native: CephNative | undefined;

/** The bindings; a clear error when the libraries are not installed. */
export function loadCeph(): CephNative {
  if (native) return native;
  let rados: koffi.IKoffiLib;
  let rbd: koffi.IKoffiLib;
  try {
    rados = koffi.load('librados.so.2');
    rbd = koffi.load('librbd.so.1');
  } catch (err) {
    throw new Error(
      `cannot load librados/librbd (${(err as Error).message}); install them: apt-get install librados2 librbd1`,
      { cause: err },
    );
  }
  native = declare(rados, rbd);
  return native;
}

/** "1.16.0": librbd's API version. */
export function librbdVersion(): string {
  const major = [0];
  const minor = [0];
  const extra = [0];
  loadCeph().rbd_version(major, minor, extra);
  return `${major[0]}.${minor[0]}.${extra[0]}`;
}

/**
 * At most this many of our blocking calls occupy the libuv pool at once (pool-calls.ts). A lock
 * acquisition can wait ~30 s for a crashed owner's watch to expire; that must not stall the pool.
 */
const calls = new PoolCalls(2);

/** Runs a blocking librados/librbd call on a worker thread; resolves with its return value. */
export function callAsync(fn: CFunction, ...args: unknown[]): Promise<number> {
  return calls.call(fn, ...args);
}
