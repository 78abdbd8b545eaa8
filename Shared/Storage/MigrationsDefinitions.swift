extension Migrations {
    static let definitions = Migration(version: 8, name: "control: goal and funnel definitions", statements: [
        """
        CREATE TABLE control.goals (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            site text NOT NULL REFERENCES control.sites (id) ON DELETE CASCADE,
            name text NOT NULL,
            match jsonb NOT NULL,
            revenue boolean NOT NULL DEFAULT true,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        "CREATE INDEX goals_site ON control.goals (site)",
        """
        CREATE TABLE control.funnels (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            site text NOT NULL REFERENCES control.sites (id) ON DELETE CASCADE,
            name text NOT NULL,
            steps jsonb NOT NULL,
            window_seconds bigint NOT NULL CHECK (window_seconds > 0),
            step_order text NOT NULL CHECK (step_order IN ('sequential', 'strict', 'any')),
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        "CREATE INDEX funnels_site ON control.funnels (site)",
        "COMMENT ON TABLE control.goals IS 'Goals of a site: which events count as a conversion (match on action, name, type + path glob, properties). Reports compute them from the facts, so they apply retroactively.'",
        "COMMENT ON TABLE control.funnels IS 'Funnels of a site: ordered steps (each a goal-style match), conversion window and step order (sequential, strict, any).'",
    ])
}

extension Migrations {
    /// Two Aggregators (or two tests) starting a new month together: the advisory lock
    /// serialises them, but the second may not see the first's table in its catalog snapshot
    /// yet. The creation now treats "already exists" as done.
    static let partitionRace = Migration(version: 9, name: "analytics: partition creation tolerates a concurrent creator", statements: [
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
                    BEGIN
                        EXECUTE format(
                            'CREATE TABLE IF NOT EXISTS analytics.%I PARTITION OF analytics.events FOR VALUES FROM (%L) TO (%L)',
                            partition_name, month::timestamp AT TIME ZONE 'UTC',
                            (month + interval '1 month')::timestamp AT TIME ZONE 'UTC');
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
