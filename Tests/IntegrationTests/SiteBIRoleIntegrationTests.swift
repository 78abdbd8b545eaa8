import Contracts
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import QueryAPI
import Storage
import Testing

@testable import Aggregator

/// `POST|DELETE /v1/admin/sites/{site}/bi-role` against the real Postgres, and the role it
/// makes, connected to with the password from the answer: it reads its own site's rows of every
/// analytics table and none of another site's, cannot write, and rotation or deletion locks the
/// old password out. Needs password authentication for roles other than `tributary`, which
/// `scripts/stack` configures.
@Suite("Per-site BI roles", .serialized, .timeLimit(.minutes(3)))
struct SiteBIRoleIntegrationTests {
    static let adminToken = "test-admin-token"
    static let logger = Logger(label: "bi-role-tests")

    func withQueryAPI(_ body: @escaping @Sendable (any TestClientProtocol, PostgresClient) async throws -> Void) async throws {
        try await TestStack.withPostgres { postgres in
            var configuration = QueryAPIConfiguration()
            configuration.adminToken = Self.adminToken
            let router = Router()
            QueryAPI(configuration: configuration, postgres: postgres,
                     directory: SiteDirectory(client: postgres, logger: TestStack.logger), logger: TestStack.logger)
                .addRoutes(to: router)
            try await Application(router: router).test(.router) { client in try await body(client, postgres) }
        }
    }

    static func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, token: String? = adminToken,
                     body: String? = nil) async throws -> (HTTPResponse.Status, JSONValue, HTTPFields) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            (response.status, (try? JSONValue.parse(response.body.readableBytesView)) ?? .null, response.headers)
        }
    }

    /// A connection as `role` to the test stack's database.
    static func connect(role: String, password: String) async throws -> PostgresConnection {
        guard let url = ProcessInfo.processInfo.environment["TRIBUTARY_POSTGRES_URL"] else {
            throw StorageError(code: .configuration, message: "TRIBUTARY_POSTGRES_URL is not set: run `make test`")
        }
        let settings = try PostgresSettings(url: url)
        let configuration = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: role, password: password,
                                                             database: settings.database, tls: .disable)
        return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
    }

    static func canConnect(role: String, password: String) async -> Bool {
        guard let connection = try? await connect(role: role, password: password) else { return false }
        try? await connection.close()
        return true
    }

    /// The SQLSTATE a statement fails with; nil when it succeeds.
    static func failure(_ sql: String, on connection: PostgresConnection) async -> String? {
        do {
            try await connection.run(fixed: sql, logger: logger)
            return nil
        } catch let error as PSQLError {
            return error.sqlState ?? "no SQLSTATE"
        } catch {
            return "\(type(of: error))"
        }
    }

    /// Every analytics table with a site column (partitions excepted; bi_roles is filled by the
    /// endpoint): the per-site tables a site role must be confined in.
    static func perSiteTables(_ postgres: PostgresClient) async throws -> [String] {
        var tables: [String] = []
        for try await table in try await postgres.query("""
            SELECT c.oid::regclass::text FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'site' AND NOT a.attisdropped
            WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'bi_roles'
            ORDER BY 1
            """, logger: logger).decode(String.self) {
            tables.append(table)
        }
        return tables
    }

    /// One row for `site` in every per-site table, its NOT NULL columns filled by type (so a
    /// table added later is covered without changing this test), in one transaction. The
    /// definition rollup belongs to a real goal: the Aggregators of concurrent tests drop
    /// rollups whose definition does not exist.
    static func seed(site: String, tables: [String], on postgres: PostgresClient) async throws {
        try await postgres.withTransaction(logger: logger) { connection in
            try await connection.run(fixed: "SELECT analytics.ensure_event_partitions(ARRAY[now()])", logger: logger)
            // The derived tables in the order batches and rebuilds (of concurrent tests) lock them.
            try await connection.run(fixed: "LOCK TABLE \(Rebuild.lockedTables) IN ROW EXCLUSIVE MODE", logger: logger)
            var goal: Int64 = 0
            for try await id in try await connection.query("""
                INSERT INTO control.goals (site, name, match) VALUES (\(site), 'BI role test', '{"action": "purchase"}') RETURNING id
                """, logger: logger).decode(Int64.self) {
                goal = id
            }
            for table in tables {
                var columns: [(name: String, type: String)] = []
                for try await (name, type) in try await connection.query("""
                    SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
                    FROM pg_attribute a
                    WHERE a.attrelid = \(table)::regclass AND a.attnum > 0 AND NOT a.attisdropped
                      AND a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''
                    ORDER BY a.attnum
                    """, logger: logger).decode((String, String).self) {
                    columns.append((name, type))
                }
                let values = try columns.map { column -> String in
                    if column.name == "site" { return SiteBIRoleStoreTestSQL.literal(site) }
                    switch (table, column.name) {
                    case ("analytics.definition_rollups", "kind"): return "'goal'"
                    case ("analytics.definition_rollups", "definition_id"), ("analytics.goal_conversions", "goal_id"): return String(goal)
                    case ("analytics.definition_rollups", "state"): return "'ready'"
                    default: break
                    }
                    switch column.type {
                    case "text": return SiteBIRoleStoreTestSQL.literal("\(column.name)-\(UUID().uuidString.prefix(8))")
                    case "uuid": return "gen_random_uuid()"
                    case "timestamp with time zone": return "now()"
                    case "date": return "current_date"
                    case "bigint", "integer": return String(Int32.random(in: 1 ... .max))
                    case "smallint": return "1"
                    case "boolean": return "false"
                    case "jsonb": return "'{}'"
                    case let type where type.hasSuffix("[]"): return "'{}'"
                    default:
                        throw StorageError(code: .invalid, message: "seed: no test value for \(table).\(column.name) of type \(column.type)")
                    }
                }
                try await connection.run(fixed: "INSERT INTO \(table) (\(columns.map(\.name).joined(separator: ", "))) VALUES (\(values.joined(separator: ", ")))",
                                         logger: logger)
            }
        }
    }

    /// Rows of `site` and of every other site in `table`, as the connection's role sees them.
    static func rows(of site: String, in table: String, on connection: PostgresConnection) async throws -> (own: Int64, others: Int64) {
        let sql = "SELECT count(*) FILTER (WHERE site = \(SiteBIRoleStoreTestSQL.literal(site))), count(*) FILTER (WHERE site <> \(SiteBIRoleStoreTestSQL.literal(site))) FROM \(table)"
        for try await counts in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode((Int64, Int64).self) {
            return counts
        }
        return (0, 0)
    }

    @Test func aSiteRoleReadsItsOwnSiteOnlyCannotWriteAndRotationLocksTheOldPasswordOut() async throws {
        try await withQueryAPI { client, postgres in
            // Mixed case and a dot: the role name must be quoted everywhere.
            let site = "Q.Bi-" + UUID().uuidString.prefix(8), other = TestStack.uniqueName("q-bi-other")
            for id in [site, other] {
                #expect(try await Self.call(client, .post, "/v1/admin/sites", body: #"{"id": "\#(id)"}"#).0 == .created)
            }
            let tables = try await Self.perSiteTables(postgres)
            #expect(tables.count >= 13, "per-site tables: \(tables)")
            try await Self.seed(site: site, tables: tables, on: postgres)
            try await Self.seed(site: other, tables: tables, on: postgres)

            // Admin token only; unknown sites are 404.
            #expect(try await Self.call(client, .post, "/v1/admin/sites/\(site)/bi-role", token: nil).0 == .unauthorized)
            #expect(try await Self.call(client, .post, "/v1/admin/sites/\(site)/bi-role", token: "wrong").0 == .unauthorized)
            #expect(try await Self.call(client, .post, "/v1/admin/sites/no-such-site-\(UUID().uuidString.prefix(8))/bi-role").0 == .notFound)
            #expect(try await Self.call(client, .delete, "/v1/admin/sites/\(site)/bi-role").0 == .notFound, "no role yet")

            let (created, answer, headers) = try await Self.call(client, .post, "/v1/admin/sites/\(site)/bi-role")
            #expect(created == .created)
            #expect(headers[.cacheControl] == "no-store")
            let role = try #require(answer["role"]?.stringValue)
            let password = try #require(answer["password"]?.stringValue)
            #expect(role == "tributary_bi_\(site)")
            #expect(answer["site"]?.stringValue == site)
            #expect(answer["database"]?.stringValue?.isEmpty == false)

            // Postgres holds a SCRAM verifier, not the password; we store none.
            let stored = try await postgres.query("SELECT rolpassword, rolconnlimit FROM pg_authid WHERE rolname = \(role)", logger: Self.logger)
            for try await (verifier, limit) in stored.decode((String, Int32).self) {
                #expect(verifier.hasPrefix("SCRAM-SHA-256$4096:") && !verifier.contains(password))
                #expect(limit == Int32(SiteBIRoleStore.connectionLimit))
            }
            let mapping = try await postgres.query("SELECT count(*) FROM analytics.bi_roles WHERE site = \(site) AND role = \(role)::name", logger: Self.logger)
            for try await count in mapping.decode(Int64.self) { #expect(count == 1) }

            // Passwords are checked at all (scripts/stack: scram-sha-256 for every role but tributary).
            let authenticated = await !Self.canConnect(role: role, password: password + "-wrong")
            #expect(authenticated, "a wrong password was accepted: this Postgres trusts the connection, so the password checks below prove nothing (recreate the stack: scripts/stack down NAME --purge; scripts/stack up NAME)")

            let connection = try await Self.connect(role: role, password: password)
            do {
                for table in tables {
                    let seen = try await Self.rows(of: site, in: table, on: connection)
                    #expect(seen.own >= 1, "\(role) sees none of its own rows in \(table)")
                    #expect(seen.others == 0, "\(role) sees \(seen.others) rows of other sites in \(table)")
                }
                // The owner sees the other site's rows that the role did not.
                for table in tables {
                    let sql = "SELECT count(*) FROM \(table) WHERE site = \(SiteBIRoleStoreTestSQL.literal(other))"
                    for try await count in try await postgres.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger).decode(Int64.self) {
                        #expect(count >= 1, "\(table) has no row of \(other): the check above proves nothing")
                    }
                }
                let ownMapping = try await Self.rows(of: site, in: "analytics.bi_roles", on: connection)
                #expect(ownMapping.own == 1 && ownMapping.others == 0, "bi_roles as seen by the role: \(ownMapping)")

                // Read only, analytics only, no way around the policy.
                let refusals = [
                    "INSERT INTO analytics.identities (site, anonymous_id, person_id, linked_at) VALUES ('\(site)', 'a', 'p', now())",
                    "UPDATE analytics.revenue_daily SET orders = orders",
                    "DELETE FROM analytics.orders",
                    "TRUNCATE analytics.events",
                    "UPDATE analytics.bi_roles SET site = '\(other)'",
                    "SELECT count(*) FROM control.sites",
                    "SELECT count(*) FROM control.keys",
                    "SELECT count(*) FROM sessionizer.visitors",
                    "SELECT count(*) FROM analytics.consumer_offsets",
                    "SELECT analytics.ensure_event_partitions(ARRAY[now()])",
                    "SELECT analytics.restrict_rows_to_site('analytics.orders')",
                    "CREATE TABLE analytics.scratch (x int)",
                    "CREATE TABLE public.scratch (x int)",
                    "ALTER TABLE analytics.orders DISABLE ROW LEVEL SECURITY",
                    "SET ROLE tributary_bi",
                ]
                for sql in refusals {
                    let state = await Self.failure(sql, on: connection)
                    #expect(state == "42501", "\(sql) was not refused for lack of privilege: \(state ?? "it succeeded")")
                }
                // A partition read directly, past its parent: refused too.
                var partition = ""
                for try await name in try await postgres.query("""
                    SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'analytics.events'::regclass LIMIT 1
                    """, logger: Self.logger).decode(String.self) { partition = name }
                let partitionState = await Self.failure("SELECT count(*) FROM \(partition)", on: connection)
                #expect(partitionState == "42501", "\(partition) read directly: \(partitionState ?? "allowed")")
                // As the bare group (no mapping) it sees nothing at all.
                try await connection.run(fixed: "SET ROLE tributary_site_bi", logger: Self.logger)
                let bare = try await Self.rows(of: site, in: "analytics.orders", on: connection)
                #expect(bare.own == 0 && bare.others == 0)
                try await connection.run(fixed: "RESET ROLE", logger: Self.logger)
            } catch {
                try? await connection.close()
                throw error
            }
            try await connection.close()

            // tributary_bi still reads every site.
            try await postgres.withConnection { owner in
                try await owner.run(fixed: "BEGIN", logger: Self.logger)
                try await owner.run(fixed: "SET LOCAL ROLE tributary_bi", logger: Self.logger)
                for table in tables {
                    let seen = try await Self.rows(of: site, in: table, on: owner)
                    #expect(seen.own >= 1 && seen.others >= 1, "tributary_bi no longer sees every site in \(table): \(seen)")
                }
                try await owner.run(fixed: "ROLLBACK", logger: Self.logger)
            }

            // Rotation: 200, same role, new password; the old one no longer logs in.
            let (rotated, rotation, _) = try await Self.call(client, .post, "/v1/admin/sites/\(site)/bi-role")
            #expect(rotated == .ok)
            #expect(rotation["role"]?.stringValue == role)
            let newPassword = try #require(rotation["password"]?.stringValue)
            #expect(newPassword != password)
            #expect(await !Self.canConnect(role: role, password: password), "the old password still logs in")
            let again = try await Self.connect(role: role, password: newPassword)
            #expect(try await Self.rows(of: site, in: "analytics.orders", on: again).others == 0)
            try await again.close()

            // Deletion drops the role: no login, no mapping; a second delete is 404.
            #expect(try await Self.call(client, .delete, "/v1/admin/sites/\(site)/bi-role").0 == .noContent)
            #expect(await !Self.canConnect(role: role, password: newPassword))
            let gone = try await postgres.query("""
                SELECT (SELECT count(*) FROM pg_roles WHERE rolname = \(role)) + (SELECT count(*) FROM analytics.bi_roles WHERE site = \(site))
                """, logger: Self.logger)
            for try await count in gone.decode(Int64.self) { #expect(count == 0) }
            #expect(try await Self.call(client, .delete, "/v1/admin/sites/\(site)/bi-role").0 == .notFound)
        }
    }

    @Test func concurrentCallsCreateOnceLongIdsFitAndForeignRolesAreNotTakenOver() async throws {
        try await withQueryAPI { client, postgres in
            // Two calls at once: one creates (201), the other rotates (200); the later password works.
            let site = TestStack.uniqueName("q-bi-race")
            #expect(try await Self.call(client, .post, "/v1/admin/sites", body: #"{"id": "\#(site)"}"#).0 == .created)
            async let first = Self.call(client, .post, "/v1/admin/sites/\(site)/bi-role")
            async let second = Self.call(client, .post, "/v1/admin/sites/\(site)/bi-role")
            let answers = try await [first, second]
            #expect(Set(answers.map(\.0.code)) == [201, 200])
            let role = try #require(answers[0].1["role"]?.stringValue)
            let working = await [Self.canConnect(role: role, password: answers[0].1["password"]?.stringValue ?? ""),
                                 Self.canConnect(role: role, password: answers[1].1["password"]?.stringValue ?? "")]
            #expect(working.filter { $0 }.count == 1, "exactly the last password set works: \(working)")
            #expect(try await Self.call(client, .delete, "/v1/admin/sites/\(site)/bi-role").0 == .noContent)

            // A 64-character id: a 63-byte role name that works.
            let long = "L" + String(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)) + String(repeating: "x", count: 43)
            #expect(try await Self.call(client, .post, "/v1/admin/sites", body: #"{"id": "\#(long)"}"#).0 == .created)
            let (created, answer, _) = try await Self.call(client, .post, "/v1/admin/sites/\(long)/bi-role")
            #expect(created == .created)
            let longRole = try #require(answer["role"]?.stringValue)
            #expect(longRole.utf8.count == 63 && longRole == SiteBIRoleStore.roleName(site: long))
            #expect(await Self.canConnect(role: longRole, password: answer["password"]?.stringValue ?? ""))
            #expect(try await Self.call(client, .delete, "/v1/admin/sites/\(long)/bi-role").0 == .noContent)

            // A role of that name that is not ours (another database of the cluster, a DBA's):
            // 409, and it is left alone.
            let taken = TestStack.uniqueName("q-bi-taken")
            #expect(try await Self.call(client, .post, "/v1/admin/sites", body: #"{"id": "\#(taken)"}"#).0 == .created)
            let foreign = SiteBIRoleStore.roleName(site: taken)
            try await postgres.withConnection { try await $0.run(fixed: "CREATE ROLE \"\(foreign)\" NOLOGIN", logger: Self.logger) }
            let (conflict, error, _) = try await Self.call(client, .post, "/v1/admin/sites/\(taken)/bi-role")
            #expect(conflict == .conflict)
            #expect(error["error"]?["code"]?.stringValue == "conflict")
            let untouched = try await postgres.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = \(foreign)", logger: Self.logger)
            for try await canLogin in untouched.decode(Bool.self) { #expect(!canLogin) }
            #expect(try await Self.call(client, .delete, "/v1/admin/sites/\(taken)/bi-role").0 == .notFound)
            try await postgres.withConnection { try await $0.run(fixed: "DROP ROLE \"\(foreign)\"", logger: Self.logger) }
        }
    }
}

/// SQL text for the tests' generated statements (the site ids here are ours).
enum SiteBIRoleStoreTestSQL {
    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}
