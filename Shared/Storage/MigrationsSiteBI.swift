extension Migrations {
    /// Per-site BI access (`POST /v1/admin/sites/{site}/bi-role`): login roles that read only
    /// their own site's rows of schema `analytics`, through row-level security.
    ///
    /// - `tributary_site_bi` (cluster-wide group role, no login) holds SELECT on every analytics
    ///   table with a `site` column; each site's login role is a member of it and of nothing
    ///   else. It gets no default privileges: a table added later is closed to site roles until
    ///   a migration calls `analytics.restrict_rows_to_site` for it.
    /// - `analytics.bi_roles` maps each site role to its site.
    /// - Every analytics table with a `site` column (monthly partitions of `events` included)
    ///   has row-level security on, with two policies: `tributary_all_rows` (permissive, every
    ///   role, all rows: `tributary_bi` and any other reader keep seeing everything) and
    ///   `tributary_site_rows` (restrictive, members of `tributary_site_bi` only: `site` must be
    ///   the site `analytics.bi_roles` maps `current_user` to). Restrictive policies are ANDed
    ///   with the permissive ones, so a site role stays confined even if it were also made a
    ///   member of `tributary_bi`. The table owner (the role that migrates and aggregates)
    ///   bypasses row-level security as before: FORCE is not set.
    static let siteBIRoles = Migration(version: 11, name: "analytics: per-site BI roles under row-level security", statements: [
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tributary_site_bi') THEN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
                    RAISE EXCEPTION 'role tributary_site_bi is missing and % may not create roles: run CREATE ROLE tributary_site_bi NOLOGIN as a superuser, then migrate again', current_user;
                END IF;
                BEGIN
                    CREATE ROLE tributary_site_bi NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL; -- another database of the cluster created it meanwhile
                END;
            END IF;
        END
        $$
        """,
        """
        CREATE TABLE analytics.bi_roles (
            role name PRIMARY KEY,
            site text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now(),
            password_set_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        "COMMENT ON TABLE analytics.bi_roles IS \(literal: "Per-site BI login roles (POST /v1/admin/sites/{site}/bi-role): each role reads only the rows of its site in every analytics table (row-level security). A site role sees its own row here only. Passwords are not stored here: Postgres keeps their SCRAM verifier.")",
        "COMMENT ON COLUMN analytics.bi_roles.role IS \(literal: "The login role (pg_roles.rolname), a member of tributary_site_bi.")",
        "COMMENT ON COLUMN analytics.bi_roles.site IS \(literal: "The only site whose rows the role reads (control.sites.id).")",
        "COMMENT ON COLUMN analytics.bi_roles.created_at IS \(literal: "When the role was created.")",
        "COMMENT ON COLUMN analytics.bi_roles.password_set_at IS \(literal: "When its password was last set (creation or rotation).")",
        "ALTER TABLE analytics.bi_roles ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY tributary_all_rows ON analytics.bi_roles AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true)",
        // Its own row only: the site policy of the other tables reads this table, so it cannot
        // use that policy itself (recursion).
        "CREATE POLICY tributary_own_role ON analytics.bi_roles AS RESTRICTIVE FOR ALL TO tributary_site_bi USING (role = current_user)",
        "GRANT USAGE ON SCHEMA analytics TO tributary_site_bi",
        "GRANT SELECT ON analytics.bi_roles TO tributary_site_bi",
        """
        CREATE FUNCTION analytics.restrict_rows_to_site(target regclass) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
            IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = target AND polname = 'tributary_all_rows') THEN
                EXECUTE format('CREATE POLICY tributary_all_rows ON %s AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true)', target);
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = target AND polname = 'tributary_site_rows') THEN
                EXECUTE format('CREATE POLICY tributary_site_rows ON %s AS RESTRICTIVE FOR ALL TO tributary_site_bi '
                               'USING (site = (SELECT r.site FROM analytics.bi_roles r WHERE r.role = current_user))', target);
            END IF;
            -- Site roles read partitions through their parent only.
            IF NOT (SELECT relispartition FROM pg_class WHERE oid = target) THEN
                EXECUTE format('GRANT SELECT ON %s TO tributary_site_bi', target);
            END IF;
        END
        $$
        """,
        "COMMENT ON FUNCTION analytics.restrict_rows_to_site(regclass) IS \(literal: "Row-level security for a per-site analytics table: the policies tributary_all_rows and tributary_site_rows, and SELECT for tributary_site_bi (not for partitions). Every migration that adds an analytics table with a site column calls it (StorageTests check).")",
        "REVOKE ALL ON FUNCTION analytics.restrict_rows_to_site(regclass) FROM PUBLIC",
        // Every table with a site column as of now, partitions of analytics.events included.
        """
        DO $$
        DECLARE
            target regclass;
        BEGIN
            FOR target IN
                SELECT c.oid::regclass FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'site' AND NOT a.attisdropped
                WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'p') AND c.relname <> 'bi_roles'
                ORDER BY c.relispartition, c.relname
            LOOP
                PERFORM analytics.restrict_rows_to_site(target);
            END LOOP;
        END
        $$
        """,
        // Partitions created from now on get the same policies (row-level security is not
        // inherited from the parent; a site role cannot read a partition directly anyway).
        """
        CREATE OR REPLACE FUNCTION analytics.ensure_event_partitions(instants timestamptz[]) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
            month date;
            partition_name text;
        BEGIN
            FOR month IN SELECT DISTINCT date_trunc('month', t AT TIME ZONE 'UTC')::date FROM unnest(instants) AS t LOOP
                partition_name := 'events_' || to_char(month, 'YYYY_MM');
                IF to_regclass('analytics.' || partition_name) IS NULL THEN
                    PERFORM pg_advisory_xact_lock(7207200102);
                    -- Without IF NOT EXISTS: when another transaction created the partition
                    -- first, its policies are set and this one must not lock it (ALTER TABLE)
                    -- while holding no lock on analytics.events: a batch would then wait for
                    -- the parent while holding the partition, and deadlock with LOCK TABLE
                    -- analytics.events (the backfill), which takes the parent first.
                    BEGIN
                        EXECUTE format(
                            'CREATE TABLE analytics.%I PARTITION OF analytics.events FOR VALUES FROM (%L) TO (%L)',
                            partition_name, month::timestamp AT TIME ZONE 'UTC',
                            (month + interval '1 month')::timestamp AT TIME ZONE 'UTC');
                        PERFORM analytics.restrict_rows_to_site(format('analytics.%I', partition_name)::regclass);
                    EXCEPTION WHEN duplicate_table OR unique_violation THEN
                        NULL; -- another transaction created it first
                    END;
                END IF;
            END LOOP;
        END
        $$
        """,
        "REVOKE EXECUTE ON FUNCTION analytics.ensure_event_partitions(timestamptz[]) FROM PUBLIC",
    ])
}
