/**
 * Numbered schema migrations. The database's user_version is the number of the last one applied;
 * each runs in its own transaction, so a crash mid-migration leaves the previous version intact.
 * Never edit a released migration: add the next number.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'hosts, profiles, images, disks, events',
    sql: `
      CREATE TABLE images (
        name        TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        format      TEXT NOT NULL DEFAULT 'raw' CHECK (format IN ('raw', 'qcow2')),
        location    TEXT NOT NULL,
        size_bytes  INTEGER,
        sha256      TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
      ) STRICT;

      CREATE TABLE profiles (
        name           TEXT PRIMARY KEY,
        description    TEXT NOT NULL DEFAULT '',
        template       TEXT NOT NULL DEFAULT 'sanboot',
        image          TEXT REFERENCES images(name) ON UPDATE CASCADE ON DELETE RESTRICT,
        kernel_args    TEXT NOT NULL DEFAULT '',
        k3s_labels     TEXT NOT NULL DEFAULT '{}',
        efi_filename   TEXT,
        params         TEXT NOT NULL DEFAULT '{}',
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
      ) STRICT;

      CREATE TABLE hosts (
        id             INTEGER PRIMARY KEY,
        mac            TEXT NOT NULL UNIQUE,
        hostname       TEXT UNIQUE,
        profile        TEXT REFERENCES profiles(name) ON UPDATE CASCADE ON DELETE RESTRICT,
        state          TEXT NOT NULL CHECK (state IN ('discovered', 'pending', 'ready', 'disabled')),
        labels         TEXT NOT NULL DEFAULT '{}',
        facts          TEXT NOT NULL DEFAULT '{}',
        initiator_iqn  TEXT,
        last_ip        TEXT,
        last_seen_at   TEXT,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
      ) STRICT;
      CREATE INDEX hosts_state ON hosts(state);

      -- A host's disk: entered by hand (an existing target anywhere) or filled by a provisioner.
      CREATE TABLE disks (
        host_id        INTEGER PRIMARY KEY REFERENCES hosts(id) ON DELETE CASCADE,
        source         TEXT NOT NULL DEFAULT 'manual',
        portals        TEXT NOT NULL,
        target_iqn     TEXT NOT NULL,
        lun            INTEGER NOT NULL DEFAULT 0 CHECK (lun BETWEEN 0 AND 16383),
        chap_user      TEXT,
        chap_secret    TEXT,
        mutual_user    TEXT,
        mutual_secret  TEXT,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
      ) STRICT;

      -- The timeline. Keyed by MAC rather than host id: a machine has a history before it is
      -- registered (discovery) and after it is removed (audit).
      CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        mac        TEXT NOT NULL,
        at         TEXT NOT NULL,
        stage      TEXT NOT NULL,
        source_ip  TEXT,
        message    TEXT NOT NULL,
        reason     TEXT
      ) STRICT;
      CREATE INDEX events_mac_id ON events(mac, id);
      CREATE INDEX events_at ON events(at);
    `,
  },
  {
    version: 2,
    name: 'DHCP: leases, address reservations, boot-file overrides',
    sql: `
      -- Full-DHCP leases. One row per address; an address is free when its row has expired.
      CREATE TABLE leases (
        ip          TEXT PRIMARY KEY,
        mac         TEXT NOT NULL,
        client_id   TEXT,
        state       TEXT NOT NULL CHECK (state IN ('offered', 'bound', 'declined', 'released')),
        expires_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
      ) STRICT;
      CREATE INDEX leases_mac ON leases(mac);

      -- A host's reserved address in full-DHCP mode.
      ALTER TABLE hosts ADD COLUMN ip TEXT;
      CREATE UNIQUE INDEX hosts_ip ON hosts(ip) WHERE ip IS NOT NULL;
      -- Boot file for PXE firmware, overriding the architecture table (host wins over profile).
      ALTER TABLE hosts ADD COLUMN boot_file TEXT;
      ALTER TABLE profiles ADD COLUMN boot_file TEXT;
    `,
  },
];
