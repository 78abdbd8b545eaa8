extension Migrations {
    /// The broker's logs as Postgres keeps account of them (`KafkaLogBook`): each topic's
    /// generations (a generation is one log of that name; the topic keeper starts the next
    /// when the broker lost the topic), and per partition what producers delivered to it and
    /// what its consumers had stored results for when it was lost.
    static let kafkaLogs = Migration(version: 12, name: "control: the broker's log generations and their losses", statements: [
        """
        CREATE TABLE control.kafka_logs (
            topic text NOT NULL,
            generation bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            lost_at timestamptz,
            unprocessed bigint,
            republished bigint NOT NULL DEFAULT 0,
            settled_at timestamptz,
            PRIMARY KEY (topic, generation))
        """,
        """
        CREATE TABLE control.kafka_log_partitions (
            topic text NOT NULL,
            generation bigint NOT NULL,
            partition int NOT NULL,
            delivered_end bigint,
            processed bigint,
            PRIMARY KEY (topic, generation, partition))
        """,
        "COMMENT ON TABLE control.kafka_logs IS 'One row per log of a topic: a broker that lost the topic (the embedded one keeps it in memory) starts the next generation. unprocessed: messages the lost log held past what consumers had stored results for; republished: how many of them the producers that delivered them sent again; the rest were lost, reported when settled.'",
    ])

    /// Each stored offset names the generation of the log it points into. A consumer that was
    /// still working through what it had fetched from a log the broker lost could otherwise
    /// store an offset after the topic keeper forgot that log's offsets, and its successor
    /// would be read from there, skipping what the producers had sent again.
    static let offsetGenerations = Migration(version: 34, name: "offsets: the log generation each stored offset belongs to", statements: [
        "ALTER TABLE sessionizer.offsets ADD COLUMN generation bigint NOT NULL DEFAULT 0",
        "ALTER TABLE analytics.consumer_offsets ADD COLUMN generation bigint NOT NULL DEFAULT 0",
        """
        UPDATE sessionizer.offsets o SET generation = g.generation
        FROM (SELECT topic, max(generation) AS generation FROM control.kafka_logs GROUP BY topic) g WHERE g.topic = o.topic
        """,
        """
        UPDATE analytics.consumer_offsets o SET generation = g.generation
        FROM (SELECT topic, max(generation) AS generation FROM control.kafka_logs GROUP BY topic) g WHERE g.topic = o.topic
        """,
        "COMMENT ON COLUMN sessionizer.offsets.generation IS 'The generation of the topic''s log (control.kafka_logs) this offset points into; only offsets of the current generation are used.'",
        "COMMENT ON COLUMN analytics.consumer_offsets.generation IS 'The generation of the topic''s log (control.kafka_logs) this offset points into; only offsets of the current generation are used.'",
    ])
}
