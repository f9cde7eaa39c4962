import { Type, type Static } from 'typebox';

/**
 * The domain's shapes, as TypeBox schemas: the REST API validates with them, the OpenAPI document is
 * generated from them, and the inventory's TypeScript types are derived from them. Semantic checks
 * (MAC syntax, RFC 1123 names, CHAP lengths) live in identifiers.ts so that their messages are clear.
 */

export const HostState = Type.Union(
  [Type.Literal('discovered'), Type.Literal('pending'), Type.Literal('ready'), Type.Literal('disabled')],
  { description: 'discovered: seen but not approved; pending: approved, waiting for a disk; ready: boots its disk; disabled: told to boot the next device.' },
);
export type HostState = Static<typeof HostState>;

const Mac = Type.String({ maxLength: 32, description: 'MAC address; any common form, stored as lower-case aa:bb:cc:dd:ee:ff', examples: ['52:54:00:aa:bb:cc'] });
const Hostname = Type.String({ maxLength: 253, description: 'RFC 1123 host name (lower-cased); also the K3s node name', examples: ['worker-1'] });
const Name = Type.String({ maxLength: 63, description: 'lower-case letters, digits, . _ -' });
const StringMap = Type.Record(Type.String(), Type.String({ maxLength: 253 }));
const Timestamp = Type.String({ description: 'ISO 8601, UTC' });

export const DiskInput = Type.Object(
  {
    portals: Type.Array(Type.String({ maxLength: 300 }), {
      minItems: 1,
      maxItems: 8,
      description: 'iSCSI portals, "address[:port]" (default port 3260); more than one means multipath',
      examples: [['192.0.2.10:3260']],
    }),
    targetIqn: Type.String({ maxLength: 223, examples: ['iqn.2003-01.org.linux-iscsi.gw:worker-1'] }),
    lun: Type.Optional(Type.Integer({ minimum: 0, maximum: 16383, description: 'default 0' })),
    chapUser: Type.Optional(Type.String({ maxLength: 64 })),
    chapSecret: Type.Optional(Type.String({ maxLength: 64, description: 'write-only' })),
    mutualUser: Type.Optional(Type.String({ maxLength: 64 })),
    mutualSecret: Type.Optional(Type.String({ maxLength: 64, description: 'write-only' })),
  },
  { additionalProperties: false },
);
export type DiskInput = Static<typeof DiskInput>;

/** A disk as the API shows it: secrets are write-only and never read back. */
export const DiskView = Type.Object({
  source: Type.String({ description: 'manual, or the provisioner that made it' }),
  portals: Type.Array(Type.String()),
  targetIqn: Type.String(),
  lun: Type.Integer(),
  chapUser: Type.Union([Type.String(), Type.Null()]),
  hasChapSecret: Type.Boolean(),
  mutualUser: Type.Union([Type.String(), Type.Null()]),
  hasMutualSecret: Type.Boolean(),
  updatedAt: Timestamp,
});
export type DiskView = Static<typeof DiskView>;

export const HostCreate = Type.Object(
  {
    mac: Mac,
    hostname: Type.Optional(Hostname),
    profile: Type.Optional(Name),
    state: Type.Optional(HostState),
    labels: Type.Optional(StringMap),
    initiatorIqn: Type.Optional(Type.String({ maxLength: 223 })),
    ip: Type.Optional(Type.String({ maxLength: 15, description: 'reserved IPv4 address (full-DHCP mode)' })),
    bootFile: Type.Optional(Type.String({ maxLength: 127, description: 'PXE boot file (TFTP name or http URL), overriding the architecture table' })),
    disk: Type.Optional(DiskInput),
  },
  { additionalProperties: false },
);
export type HostCreate = Static<typeof HostCreate>;

export const HostUpdate = Type.Object(
  {
    hostname: Type.Optional(Hostname),
    profile: Type.Optional(Type.Union([Name, Type.Null()])),
    state: Type.Optional(HostState),
    labels: Type.Optional(StringMap),
    initiatorIqn: Type.Optional(Type.Union([Type.String({ maxLength: 223 }), Type.Null()])),
    ip: Type.Optional(Type.Union([Type.String({ maxLength: 15 }), Type.Null()], { description: 'reserved IPv4 address; null removes it' })),
    bootFile: Type.Optional(Type.Union([Type.String({ maxLength: 127, description: 'PXE boot file (TFTP name or http URL), overriding the architecture table' }), Type.Null()])),
    disk: Type.Optional(Type.Union([DiskInput, Type.Null()], { description: 'null removes the disk' })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type HostUpdate = Static<typeof HostUpdate>;

export const HostApprove = Type.Object(
  {
    hostname: Type.Optional(Hostname),
    profile: Type.Optional(Name),
  },
  { additionalProperties: false },
);
export type HostApprove = Static<typeof HostApprove>;

export const HostView = Type.Object({
  mac: Type.String(),
  hostname: Type.Union([Type.String(), Type.Null()]),
  profile: Type.Union([Type.String(), Type.Null()]),
  state: HostState,
  labels: StringMap,
  facts: StringMap,
  initiatorIqn: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  bootFile: Type.Union([Type.String(), Type.Null()]),
  lastIp: Type.Union([Type.String(), Type.Null()]),
  lastSeenAt: Type.Union([Timestamp, Type.Null()]),
  disk: Type.Union([DiskView, Type.Null()]),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type HostView = Static<typeof HostView>;

/** Hardware facts a machine reports about itself (iPXE settings, DHCP options). */
export const Facts = Type.Object(
  {
    buildarch: Type.Optional(Type.String({ maxLength: 32 })),
    platform: Type.Optional(Type.String({ maxLength: 32 })),
    uuid: Type.Optional(Type.String({ maxLength: 64 })),
    manufacturer: Type.Optional(Type.String({ maxLength: 128 })),
    product: Type.Optional(Type.String({ maxLength: 128 })),
    serial: Type.Optional(Type.String({ maxLength: 128 })),
    arch: Type.Optional(Type.String({ maxLength: 16, description: 'DHCP option 93 client architecture' })),
  },
  { additionalProperties: false },
);
export type Facts = Static<typeof Facts>;

// One flat object: an intersection with Facts (additionalProperties: false) would refuse `mac` itself.
export const DiscoverInput = Type.Object({ mac: Mac, ...Facts.properties }, { additionalProperties: false });
export type DiscoverInput = Static<typeof DiscoverInput>;

export const ProfileCreate = Type.Object(
  {
    name: Name,
    description: Type.Optional(Type.String({ maxLength: 500 })),
    template: Type.Optional(Type.String({ maxLength: 63, default: 'sanboot', description: 'boot-templates/<template>.ipxe.hbs' })),
    image: Type.Optional(Type.Union([Name, Type.Null()])),
    kernelArgs: Type.Optional(Type.String({ maxLength: 2000 })),
    k3sLabels: Type.Optional(StringMap),
    efiFilename: Type.Optional(
      Type.Union([Type.String({ maxLength: 255, description: 'sanboot --filename for UEFI, e.g. /EFI/BOOT/BOOTX64.EFI' }), Type.Null()]),
    ),
    params: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 500 }), { description: 'extra template parameters' })),
    bootFile: Type.Optional(Type.Union([Type.String({ maxLength: 127, description: 'PXE boot file (TFTP name or http URL), overriding the architecture table' }), Type.Null()])),
  },
  { additionalProperties: false },
);
export type ProfileCreate = Static<typeof ProfileCreate>;

export const ProfileUpdate = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 500 })),
    template: Type.Optional(Type.String({ maxLength: 63 })),
    image: Type.Optional(Type.Union([Name, Type.Null()])),
    kernelArgs: Type.Optional(Type.String({ maxLength: 2000 })),
    k3sLabels: Type.Optional(StringMap),
    efiFilename: Type.Optional(Type.Union([Type.String({ maxLength: 255 }), Type.Null()])),
    params: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 500 }))),
    bootFile: Type.Optional(Type.Union([Type.String({ maxLength: 127, description: 'PXE boot file (TFTP name or http URL), overriding the architecture table' }), Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type ProfileUpdate = Static<typeof ProfileUpdate>;

export const ProfileView = Type.Object({
  name: Type.String(),
  description: Type.String(),
  template: Type.String(),
  image: Type.Union([Type.String(), Type.Null()]),
  kernelArgs: Type.String(),
  k3sLabels: StringMap,
  efiFilename: Type.Union([Type.String(), Type.Null()]),
  params: StringMap,
  bootFile: Type.Union([Type.String(), Type.Null()]),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type ProfileView = Static<typeof ProfileView>;

export const ImageFormat = Type.Union([Type.Literal('raw'), Type.Literal('qcow2')]);

export const ImageCreate = Type.Object(
  {
    name: Name,
    location: Type.String({ minLength: 1, maxLength: 1024, description: 'where the golden image lives: a file path (or rbd:pool/image once Ceph is configured)' }),
    format: Type.Optional(ImageFormat),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    sizeBytes: Type.Optional(Type.Integer({ minimum: 0 })),
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
  },
  { additionalProperties: false },
);
export type ImageCreate = Static<typeof ImageCreate>;

export const ImageView = Type.Object({
  name: Type.String(),
  description: Type.String(),
  format: ImageFormat,
  location: Type.String(),
  sizeBytes: Type.Union([Type.Integer(), Type.Null()]),
  sha256: Type.Union([Type.String(), Type.Null()]),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type ImageView = Static<typeof ImageView>;

export const EventView = Type.Object({
  id: Type.Integer(),
  mac: Type.String(),
  at: Timestamp,
  stage: Type.String({ description: 'dhcp, tftp, script, discover, api, iscsi, os-up, ...' }),
  sourceIp: Type.Union([Type.String(), Type.Null()]),
  message: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
});
export type EventView = Static<typeof EventView>;
