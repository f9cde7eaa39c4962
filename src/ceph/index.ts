// hiveboot's binding of librados/librbd (koffi): connections, pools, RBD images, clones, import, aio.
export {
  CephCluster,
  acquireCluster,
  sharedClusterCount,
  DEFAULT_CEPH_CLIENT,
  DEFAULT_CEPH_CONF,
  type CephSettings,
  type ClusterLease,
} from './cluster.js';
export { CephPool, RbdFeature, type CreateImageOptions, type ParentSpec } from './pool.js';
export { RbdImage, type AllocatedExtent, type ImageStat, type OpenImageOptions, type ParentInfo, type SnapshotInfo } from './image.js';
export { importImage, type ImportOptions, type ImportProgress, type ImportResult } from './import.js';
export { CephError, isCephCode } from './errors.js';
export { aioInFlight } from './aio.js';
export { librbdVersion } from './native.js';
