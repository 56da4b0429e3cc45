-- Foundation: Proxmox nodes, project templates, the audit log and system settings.

CREATE TABLE nodes (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL,
    api_url               text NOT NULL,
    pve_node              text NOT NULL,
    token_id              text NOT NULL,
    token_secret_sealed   text NOT NULL,
    tls_fingerprint       text,
    verify_tls            boolean NOT NULL DEFAULT true,
    total_ram_mb          integer NOT NULL CHECK (total_ram_mb > 0),
    allocated_ram_mb      integer NOT NULL DEFAULT 0 CHECK (allocated_ram_mb >= 0),
    vmid_range_start      integer NOT NULL CHECK (vmid_range_start >= 100),
    vmid_range_end        integer NOT NULL CHECK (vmid_range_end <= 999999999),
    status                text NOT NULL DEFAULT 'unknown'
                          CHECK (status IN ('unknown', 'online', 'offline')),
    last_seen             timestamptz,
    last_error            text,
    poll_failures         integer NOT NULL DEFAULT 0,
    polled_at             timestamptz,
    pve_version           text,
    mem_used_mb           integer,
    cpu                   double precision,
    uptime_s              bigint,
    templates             integer[] NOT NULL DEFAULT '{}',
    ssh_host              text,
    ssh_port              integer NOT NULL DEFAULT 22,
    ssh_user              text NOT NULL DEFAULT 'root',
    ssh_private_key_sealed text,
    ssh_host_key          text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nodes_name_key UNIQUE (name),
    CONSTRAINT nodes_vmid_range_check CHECK (vmid_range_start <= vmid_range_end)
);

CREATE TABLE projects (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL,
    slug               text NOT NULL,
    template_vmid      integer NOT NULL CHECK (template_vmid >= 100),
    ram_mb             integer NOT NULL CHECK (ram_mb >= 16),
    cores              integer NOT NULL CHECK (cores >= 1),
    disk_gb            integer NOT NULL CHECK (disk_gb >= 1),
    app_port           integer NOT NULL CHECK (app_port BETWEEN 1 AND 65535),
    health_path        text,
    bootstrap_commands jsonb NOT NULL DEFAULT '[]',
    is_default         boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_slug_key UNIQUE (slug)
);
-- At most one default project.
CREATE UNIQUE INDEX projects_one_default ON projects (is_default) WHERE is_default;

CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action       text NOT NULL,
    target_type  text NOT NULL,
    target_id    text,
    details      jsonb NOT NULL DEFAULT '{}',
    client_ip    text,
    request_id   text
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, at DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, at DESC);

CREATE TABLE system_settings (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO system_settings (key, value) VALUES ('ram_overcommit', '1.0');
