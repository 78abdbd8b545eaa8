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
