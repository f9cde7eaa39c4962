import koffi from 'koffi';
import { aioCallbackT, diffCallbackT, loadCeph, progressCallbackT } from './native.js';

/**
 * librbd's asynchronous I/O, as promises.
 *
 * Every request gets an rbd_completion_t whose callback argument is a number of ours; one callback,
 * registered with koffi once per process, serves all of them. librbd calls it on one of its own
 * threads; koffi relays the call to the event loop and holds that thread until the JavaScript has
 * run (so the callback stays short: read the result, release the completion, settle a promise).
 *
 * Two traps, both handled here:
 * - koffi's relay does not keep Node's event loop alive. With nothing else pending, Node would exit
 *   (or abort) with requests in flight. A timer is ref'd while any request is in flight and unref'd
 *   when the last one completes.
 * - librbd may complete a request on the calling thread, inside the submission call itself (an
 *   argument it refuses at once). The request is registered before it is submitted, so such a
 *   completion finds it.
 */

interface Pending {
  resolve(rc: number): void;
}

let nextId = 1;
const pending = new Map<number, Pending>();
let aioCallback: koffi.IKoffiRegisteredCallback | undefined;
let keepAlive: NodeJS.Timeout | undefined;

function onComplete(completion: unknown, id: number): void {
  const lib = loadCeph();
  const rc = Number(lib.rbd_aio_get_return_value(completion));
  lib.rbd_aio_release(completion);
  const request = pending.get(id);
  if (!request) return;
  pending.delete(id);
  if (pending.size === 0) keepAlive?.unref();
  request.resolve(rc);
}

function callback(): koffi.IKoffiRegisteredCallback {
  aioCallback ??= koffi.register(onComplete, koffi.pointer(aioCallbackT));
  return aioCallback;
}

function track(id: number, request: Pending): void {
  pending.set(id, request);
  keepAlive ??= setInterval(() => {}, 2 ** 31 - 1);
  keepAlive.ref();
}

/**
 * Submits one aio request: `submit(completion)` calls rbd_aio_*(…, completion) and returns its
 * result. Resolves with the request's return value (bytes for reads and writes, 0 otherwise), which
 * may be a negative errno: the caller turns it into an error naming the image.
 */
export function aio(submit: (completion: unknown) => number): Promise<number> {
  const lib = loadCeph();
  return new Promise<number>((resolve) => {
    const id = nextId++;
    if (nextId > Number.MAX_SAFE_INTEGER) nextId = 1;
    const slot = [null as unknown];
    const rc = Number(lib.rbd_aio_create_completion(id, callback(), slot));
    if (rc < 0) {
      resolve(rc);
      return;
    }
    track(id, { resolve });
    const submitted = submit(slot[0]);
    if (submitted < 0 && pending.delete(id)) {
      // Refused outright and never completed: the completion is still ours to release.
      if (pending.size === 0) keepAlive?.unref();
      lib.rbd_aio_release(slot[0]);
      resolve(submitted);
    }
  });
}

/** Requests in flight in this process (tests, metrics). */
export function aioInFlight(): number {
  return pending.size;
}

// ---- rbd_diff_iterate2's per-extent callback ------------------------------------------------------

type DiffSink = (offset: number, length: number, exists: boolean) => void;
const diffSinks = new Map<number, DiffSink>();
let nextDiffId = 1;
let diffCallback: koffi.IKoffiRegisteredCallback | undefined;

/**
 * The callback and argument for one rbd_diff_iterate2 call (run through callAsync, on a worker: its
 * per-extent calls are relayed to the event loop). `done()` forgets the sink.
 */
export function diffReceiver(sink: DiffSink): { callback: koffi.IKoffiRegisteredCallback; arg: number; done(): void } {
  diffCallback ??= koffi.register((offset: number | bigint, length: number | bigint, exists: number, id: number) => {
    diffSinks.get(id)?.(Number(offset), Number(length), exists !== 0);
    return 0;
  }, koffi.pointer(diffCallbackT));
  const id = nextDiffId++;
  diffSinks.set(id, sink);
  return { callback: diffCallback, arg: id, done: () => diffSinks.delete(id) };
}

// ---- progress callbacks that librbd insists on -------------------------------------------------------

let noProgress: koffi.IKoffiRegisteredCallback | undefined;

/**
 * A progress callback that ignores progress: calls such as rbd_resize2 call theirs without checking
 * for NULL (a shrink that removes objects would jump to address 0).
 */
export function ignoreProgress(): koffi.IKoffiRegisteredCallback {
  noProgress ??= koffi.register(() => 0, koffi.pointer(progressCallbackT));
  return noProgress;
}
