import Logging
import PostgresNIO
import Testing

@testable import Storage

/// The analytics schema stays ready for a distributed Postgres (Citus) distributed by `site`
/// (docs/DESIGN.md, "Past one machine"): every primary key and unique constraint of a table
/// distributed by site is led by `site`, so each is enforceable on one shard and every join
/// on site is co-located. The few tables that are not per site are listed here with the
/// reason; a new migration that breaks the rule fails this test.
@Suite("Analytics schema keys for distribution by site", .serialized)
struct DistributionKeyTests {
    /// Tables that are not distributed by site, and why.
    static let notDistributedBySite: [String: String] = [
        "consumer_offsets": "the Aggregator's input offsets per topic partition: a small local table on the coordinator, written in each batch's transaction",
        "definition_rollups": "the state of each goal/funnel rollup, keyed by definition id (ids are global): a reference table",
        "bi_roles": "the per-site BI login roles, keyed by role name (roles are cluster-wide): a small reference table",
    ]

    @Test func everyKeyOfEveryAnalyticsTableIsLedBySite() async throws {
        try await withPostgres { client, logger in
            let rows = try await client.query("""
                SELECT c.relname, con.conname, a.attname
                FROM pg_constraint con
                JOIN pg_class c ON c.oid = con.conrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = con.conkey[1]
                WHERE n.nspname = 'analytics' AND con.contype IN ('p', 'u') AND NOT c.relispartition
                ORDER BY 1, 2
                """, logger: logger)
            var keys: [(table: String, constraint: String, firstColumn: String)] = []
            for try await (table, constraint, column) in rows.decode((String, String, String).self) {
                keys.append((table, constraint, column))
            }
            #expect(Set(["events", "orders", "sessions", "revenue_daily", "funnel_entries"]).isSubset(of: Set(keys.map(\.table))),
                    "the analytics tables' keys were not found: \(keys.map(\.table))")
            for key in keys where Self.notDistributedBySite[key.table] == nil {
                #expect(key.firstColumn == "site", "analytics.\(key.table): \(key.constraint) starts with \(key.firstColumn), not site")
            }
            let unique = try await client.query("""
                SELECT t.relname, i.relname, a.attname
                FROM pg_index x
                JOIN pg_class i ON i.oid = x.indexrelid
                JOIN pg_class t ON t.oid = x.indrelid
                JOIN pg_namespace n ON n.oid = t.relnamespace
                JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
                WHERE n.nspname = 'analytics' AND x.indisunique AND NOT t.relispartition
                """, logger: logger)
            for try await (table, index, column) in unique.decode((String, String, String).self)
            where Self.notDistributedBySite[table] == nil {
                #expect(column == "site", "analytics.\(table): unique index \(index) starts with \(column), not site")
            }
        }
    }
}
