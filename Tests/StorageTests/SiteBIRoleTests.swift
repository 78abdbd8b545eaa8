import Foundation
import Logging
import PostgresNIO
import Testing

@testable import Storage

@Suite struct SiteBIRoleNamingTests {
    /// The same verifier as Python's `hashlib.pbkdf2_hmac('sha256', b'pencil', bytes(range(16)), 4096)`
    /// followed by RFC 5802's ClientKey/StoredKey/ServerKey.
    @Test func theSCRAMVerifierIsPostgresFormatOfRFC5802() {
        #expect(SCRAMVerifier.make(password: "pencil", salt: Array(0..<16)) ==
                "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE=")
        // A fresh salt each time: two verifiers of one password differ.
        #expect(SCRAMVerifier.make(password: "pencil") != SCRAMVerifier.make(password: "pencil"))
    }

    @Test func roleNamesFitPostgresAndStayDistinct() {
        #expect(SiteBIRoleStore.roleName(site: "shop-1") == "tributary_bi_shop-1")
        #expect(SiteBIRoleStore.roleName(site: "Shop.One") == "tributary_bi_Shop.One")
        let fifty = String(repeating: "a", count: 50)
        #expect(SiteBIRoleStore.roleName(site: fifty) == "tributary_bi_" + fifty)
        let long = String(repeating: "b", count: 64), longer = String(repeating: "b", count: 63) + "c"
        #expect(SiteBIRoleStore.roleName(site: long).utf8.count == 63)
        #expect(SiteBIRoleStore.roleName(site: long).hasPrefix("tributary_bi_" + String(repeating: "b", count: 41) + "_"))
        #expect(SiteBIRoleStore.roleName(site: long) != SiteBIRoleStore.roleName(site: longer))
        #expect(SiteBIRoleStore.identifier(#"a"b"#) == #""a""b""#)
        #expect(SiteBIRoleStore.literal("it's") == "'it''s'")
        let password = SiteBIRoleStore.generatePassword()
        #expect(password.count == 32 && password.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
    }
}

/// Row-level security covers every analytics table with a `site` column, and nothing else is
/// readable by site roles: a migration that adds a table and forgets
/// `analytics.restrict_rows_to_site` fails here.
@Suite("Per-site BI roles: row-level security in the schema", .serialized)
struct SiteRowSecurityTests {
    struct Relation {
        var name: String, kind: String, isPartition: Bool, hasSite: Bool
        var rowSecurity: Bool, forced: Bool, siteRolesRead: Bool, siteRolesWrite: Bool
    }

    static func relations(_ client: PostgresClient, _ logger: Logger) async throws -> [Relation] {
        let rows = try await client.query("""
            SELECT c.oid::regclass::text, c.relkind::text, c.relispartition,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'site' AND NOT a.attisdropped),
                   c.relrowsecurity, c.relforcerowsecurity,
                   has_table_privilege('tributary_site_bi', c.oid, 'SELECT'),
                   has_table_privilege('tributary_site_bi', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
            ORDER BY 1
            """, logger: logger)
        var relations: [Relation] = []
        for try await (name, kind, partition, site, security, forced, read, write) in rows.decode((String, String, Bool, Bool, Bool, Bool, Bool, Bool).self) {
            relations.append(Relation(name: name, kind: kind, isPartition: partition, hasSite: site, rowSecurity: security,
                                      forced: forced, siteRolesRead: read, siteRolesWrite: write))
        }
        return relations
    }

    @Test func everyTableWithASiteColumnHasRowSecurityAndTheSitePolicy() async throws {
        try await withPostgres { client, logger in
            // At least one partition, so that the partitions' policies are checked too.
            try await client.query("SELECT analytics.ensure_event_partitions(ARRAY[now()])", logger: logger)
            let relations = try await Self.relations(client, logger)
            var policies: [String: [String: (permissive: String, roles: [String], command: String, qual: String)]] = [:]
            let rows = try await client.query("""
                SELECT format('%I.%I', schemaname, tablename)::regclass::text, policyname::text, permissive, roles::text[], cmd, coalesce(qual, '')
                FROM pg_policies WHERE schemaname = 'analytics'
                """, logger: logger)
            for try await (table, name, permissive, roles, command, qual) in rows.decode((String, String, String, [String], String, String).self) {
                policies[table, default: [:]][name] = (permissive, roles, command, qual)
            }

            let perSite = relations.filter(\.hasSite)
            #expect(perSite.contains { $0.name == "analytics.orders" } && perSite.contains { $0.isPartition },
                    "no per-site tables or partitions found: \(relations.map(\.name))")
            for relation in perSite {
                let name = relation.name
                #expect(["r", "p"].contains(relation.kind), "\(name) has a site column but is a view or foreign table (kind \(relation.kind)): views read as their owner, past row-level security")
                #expect(relation.rowSecurity, "\(name) has a site column but no row-level security: call analytics.restrict_rows_to_site('\(name)') in its migration")
                #expect(!relation.forced, "\(name) forces row-level security on its owner: the Aggregator and the reports would pay for the policies")
                let all = policies[name]?["tributary_all_rows"]
                #expect(all?.permissive == "PERMISSIVE" && all?.roles == ["public"] && all?.command == "ALL" && all?.qual == "true",
                        "\(name): policy tributary_all_rows is missing or changed: \(String(describing: all))")
                let own = name == "analytics.bi_roles" ? policies[name]?["tributary_own_role"] : policies[name]?["tributary_site_rows"]
                #expect(own?.permissive == "RESTRICTIVE" && own?.roles == ["tributary_site_bi"] && own?.command == "ALL",
                        "\(name): the restrictive policy for tributary_site_bi is missing: \(String(describing: own))")
                if name == "analytics.bi_roles" {
                    #expect(own?.qual == "(role = CURRENT_USER)", "\(name): \(own?.qual ?? "no policy")")
                } else {
                    #expect(own?.qual.contains("analytics.bi_roles") == true && own?.qual.contains("CURRENT_USER") == true,
                            "\(name): \(own?.qual ?? "no policy")")
                }
                #expect(policies[name]?.count == 2, "\(name) has other policies: \(policies[name]?.keys.sorted() ?? [])")
                // Site roles read every per-site table (through the parent for partitions).
                #expect(relation.siteRolesRead == !relation.isPartition, "\(name): SELECT for tributary_site_bi is \(relation.siteRolesRead)")
            }
            for relation in relations {
                #expect(!relation.siteRolesWrite, "tributary_site_bi may write to \(relation.name)")
                if relation.siteRolesRead {
                    #expect(relation.hasSite && relation.rowSecurity, "tributary_site_bi may read \(relation.name), which is not restricted to a site")
                }
            }

            // No default privileges for site roles (new tables stay closed until a migration
            // restricts them), and the group is a member of nothing (not of tributary_bi).
            let defaults = try await client.query("""
                SELECT count(*)::int8 FROM pg_default_acl d, aclexplode(d.defaclacl) x
                WHERE x.grantee = 'tributary_site_bi'::regrole
                """, logger: logger)
            for try await count in defaults.decode(Int64.self) { #expect(count == 0, "default privileges grant tributary_site_bi something") }
            let memberships = try await client.query("""
                SELECT count(*)::int8 FROM pg_auth_members WHERE member = 'tributary_site_bi'::regrole
                """, logger: logger)
            for try await count in memberships.decode(Int64.self) { #expect(count == 0, "tributary_site_bi is a member of another role") }
        }
    }

    /// The table owner bypasses row-level security (not forced), so its plans (the Aggregator's
    /// and the reports') are those without it; and the permissive policy (`true`) leaves
    /// tributary_bi's plans as they were too, also with a predicate that is not leakproof.
    /// Compared within one transaction that is rolled back: with row-level security as
    /// migrated, then with it disabled, as a non-superuser owner (superusers always bypass it)
    /// and as tributary_bi, with sequential scans allowed and not. In a database of its own, so
    /// that its exclusive locks never meet other tests' transactions.
    @Test func plansOfTheOwnerAndOfTributaryBIAreUnchanged() async throws {
        let queries = [
            "SELECT day, currency, sum(orders), sum(revenue_minor) FROM analytics.revenue_daily WHERE site = 'shop' AND day BETWEEN '2026-01-01' AND '2026-01-31' GROUP BY 1, 2",
            "SELECT source, medium, sum(sessions) FROM analytics.traffic_daily WHERE site = 'shop' AND day >= '2026-01-01' AND landing_page LIKE '/product%' GROUP BY 1, 2",
            "SELECT count(*) FROM analytics.orders WHERE site = 'shop' AND day BETWEEN '2026-01-01' AND '2026-01-31'",
            "SELECT count(DISTINCT person_id) FROM analytics.events WHERE site = 'shop' AND day BETWEEN '2026-01-01' AND '2026-01-07' AND properties->>'plan' = 'pro'",
            "SELECT count(*) FROM analytics.visitor_days WHERE site = 'shop' AND day BETWEEN '2026-01-01' AND '2026-01-31' AND (previous_day IS NULL OR previous_day < '2026-01-01')",
            "SELECT steps_reached, count(*) FROM analytics.funnel_entries WHERE site = 'shop' AND funnel_id = 1 AND entry_day BETWEEN '2026-01-01' AND '2026-01-31' GROUP BY 1",
            "SELECT o.order_id, i.sku FROM analytics.orders o JOIN analytics.order_items i USING (site, order_id) WHERE o.site = 'shop' AND o.day = '2026-01-05'",
            "SELECT count(*) FROM analytics.goal_conversions g JOIN analytics.sessions s ON s.site = g.site AND s.person_id = g.person_id WHERE g.site = 'shop' AND g.goal_id = 1",
        ]
        try await withScratchDatabase { client, logger in
            try await client.query("SELECT analytics.ensure_event_partitions(ARRAY['2026-01-15'::timestamptz])", logger: logger)
            try await client.withConnection { connection in
                try await connection.run(fixed: "BEGIN", logger: logger)
                do {
                    let owner = "plan_owner_\(UUID().uuidString.prefix(8).lowercased())"
                    try await connection.run(fixed: "CREATE ROLE \(owner) NOLOGIN", logger: logger)
                    try await connection.run(fixed: "GRANT USAGE ON SCHEMA analytics TO \(owner)", logger: logger)
                    var tables: [String] = []
                    for try await table in try await connection.query("""
                        SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'p') AND c.relrowsecurity
                        """, logger: logger).decode(String.self) {
                        tables.append(table)
                    }
                    for table in tables { try await connection.run(fixed: "ALTER TABLE \(table) OWNER TO \(owner)", logger: logger) }

                    func plans() async throws -> [String] {
                        var all: [String] = []
                        for role in [owner, "tributary_bi"] {
                            for seqscan in ["on", "off"] {
                                try await connection.run(fixed: "SET LOCAL ROLE \(role)", logger: logger)
                                try await connection.run(fixed: "SET LOCAL enable_seqscan = \(seqscan)", logger: logger)
                                for query in queries {
                                    var lines: [String] = []
                                    for try await line in try await connection.query(PostgresQuery(unsafeSQL: "EXPLAIN (COSTS OFF) " + query), logger: logger).decode(String.self) {
                                        lines.append(line)
                                    }
                                    all.append("\(role), seqscan \(seqscan): \(query)\n" + lines.joined(separator: "\n"))
                                }
                                try await connection.run(fixed: "RESET ROLE", logger: logger)
                            }
                        }
                        return all
                    }
                    let withSecurity = try await plans()
                    for table in tables { try await connection.run(fixed: "ALTER TABLE \(table) DISABLE ROW LEVEL SECURITY", logger: logger) }
                    let without = try await plans()
                    #expect(withSecurity.count == without.count)
                    for (with, before) in zip(withSecurity, without) {
                        #expect(with == before, "the plan changed with row-level security:\n\(with)\n--- without:\n\(before)")
                    }
                } catch {
                    try? await connection.run(fixed: "ROLLBACK", logger: logger)
                    Issue.record("\(String(reflecting: error))")
                    throw error
                }
                try await connection.run(fixed: "ROLLBACK", logger: logger)
            }
        }
    }
}

/// Runs `body` in a new, migrated database of the test stack's cluster, dropped afterwards.
func withScratchDatabase<T: Sendable>(_ body: @escaping @Sendable (PostgresClient, Logger) async throws -> T) async throws -> T {
    guard let url = ProcessInfo.processInfo.environment["TRIBUTARY_POSTGRES_URL"] else {
        throw StorageError(code: .configuration, message: "TRIBUTARY_POSTGRES_URL is not set: run `make test`")
    }
    let logger = Logger(label: "storage-tests")
    let name = "tributary_scratch_\(UUID().uuidString.prefix(8).lowercased())"
    var settings = try PostgresSettings(url: url)
    let admin = settings.makeClient(logger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { await admin.run(); return nil }
        defer { group.cancelAll() }
        try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        settings.database = name
        settings.maximumConnections = 2
        let scratch = settings.makeClient(logger: logger)
        let result: Result<T, any Error>
        do {
            result = .success(try await withThrowingTaskGroup(of: T?.self) { inner in
                inner.addTask { await scratch.run(); return nil }
                defer { inner.cancelAll() }
                try await Migrator.migrate(scratch, logger: logger)
                return try await body(scratch, logger)
            })
        } catch {
            result = .failure(error)
        }
        try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(name) WITH (FORCE)"), logger: logger)
        return try result.get()
    }
}
