import Crypto
import Foundation
import Logging
import PostgresNIO

/// A site's BI login role with its new password, in clear text: returned once, when the role
/// is created or its password rotated, and never stored (Postgres keeps a SCRAM verifier).
public struct SiteBIRole: Sendable {
    public var site: String
    /// The Postgres login role, e.g. `tributary_bi_shop-1`.
    public var role: String
    /// The database whose `analytics` schema the role reads.
    public var database: String
    public var password: String
    /// True when the role was created by this call, false when its password was rotated.
    public var created: Bool
}

/// Per-site BI login roles (migration 11): members of `tributary_site_bi`, mapped to their
/// site in `analytics.bi_roles`, so that row-level security shows them their site's rows only.
/// Needs a Postgres role that may create roles (superuser or CREATEROLE).
public struct SiteBIRoleStore: Sendable {
    /// The group role whose members are confined to one site.
    public static let group = "tributary_site_bi"
    /// Connections one site role may hold at once, so that one tenant's BI tool cannot take
    /// all of the server's connections.
    public static let connectionLimit = 10

    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// `tributary_bi_<site>`; a site id longer than 50 characters (ids may have 64; role names
    /// 63 bytes) keeps its first 41 and a hash of the whole id: `tributary_bi_<41>_<8 hex>`.
    /// Site ids are `[A-Za-z0-9][A-Za-z0-9._-]*`, so the name is always quoted (it may hold `-`
    /// or `.` and upper case). Role names are cluster-wide: a name taken by another role (for
    /// example a site of the same id in another database of the cluster) is a conflict.
    public static func roleName(site: String) -> String {
        let prefix = "tributary_bi_"
        if prefix.utf8.count + site.utf8.count <= 63 { return prefix + site }
        let digest = SHA256.hash(data: Data(site.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
        return prefix + String(site.prefix(41)) + "_" + digest
    }

    /// Creates the site's role with a fresh password, or, when it exists, gives it a fresh
    /// password (the old one stops working for new connections; open sessions stay open).
    /// Throws `.notFound` for an unknown site, `.conflict` when the role name is taken by a
    /// role that is not this site's, `.privilege` when our Postgres role may not create roles.
    public func createOrRotate(site: String) async throws -> SiteBIRole {
        let password = Self.generatePassword()
        let verifier = SCRAMVerifier.make(password: password)
        do {
            return try await client.withTransaction(logger: logger) { connection in
                // Serialises calls for one site (and with key rotation).
                guard try await exists("SELECT 1 FROM control.sites WHERE id = \(site) FOR UPDATE", on: connection) else {
                    throw StorageError(code: .notFound, message: "site '\(site)' does not exist")
                }
                var mapped: String?
                for try await role in try await connection.query("SELECT role::text FROM analytics.bi_roles WHERE site = \(site)", logger: logger).decode(String.self) {
                    mapped = role
                }
                let role = mapped ?? Self.roleName(site: site)
                let roleExists = try await exists("SELECT 1 FROM pg_roles WHERE rolname = \(role)", on: connection)
                let attributes = "LOGIN PASSWORD \(Self.literal(verifier)) CONNECTION LIMIT \(Self.connectionLimit)"
                if roleExists {
                    guard mapped != nil else {
                        throw StorageError(code: .conflict, message: "a Postgres role named '\(role)' exists but is not the BI role of site '\(site)' in this database")
                    }
                    try await connection.run(fixed: "ALTER ROLE \(Self.identifier(role)) WITH \(attributes)", logger: logger)
                    try await connection.run(fixed: "GRANT \(Self.group) TO \(Self.identifier(role))", logger: logger)
                    try await connection.run("UPDATE analytics.bi_roles SET password_set_at = now() WHERE site = \(site)", logger: logger)
                } else {
                    // New, or dropped behind our back: (re)create it under the mapped name.
                    try await connection.run(fixed: "CREATE ROLE \(Self.identifier(role)) WITH \(attributes) IN ROLE \(Self.group)", logger: logger)
                    try await connection.run("""
                        INSERT INTO analytics.bi_roles (role, site) VALUES (\(role)::name, \(site))
                        ON CONFLICT (site) DO UPDATE SET password_set_at = now()
                        """, logger: logger)
                }
                var database = ""
                for try await name in try await connection.query("SELECT current_database()::text", logger: logger).decode(String.self) { database = name }
                return SiteBIRole(site: site, role: role, database: database, password: password, created: !roleExists)
            }
        } catch {
            throw Self.storageError(error, site: site)
        }
    }

    /// Drops the site's role. Returns false when the site has none; throws `.notFound` for an
    /// unknown site.
    public func drop(site: String) async throws -> Bool {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                guard try await exists("SELECT 1 FROM control.sites WHERE id = \(site) FOR UPDATE", on: connection) else {
                    throw StorageError(code: .notFound, message: "site '\(site)' does not exist")
                }
                var mapped: String?
                for try await role in try await connection.query("DELETE FROM analytics.bi_roles WHERE site = \(site) RETURNING role::text", logger: logger).decode(String.self) {
                    mapped = role
                }
                guard let role = mapped else { return false }
                if try await exists("SELECT 1 FROM pg_roles WHERE rolname = \(role)", on: connection) {
                    try await connection.run(fixed: "DROP ROLE \(Self.identifier(role))", logger: logger)
                }
                return true
            }
        } catch {
            throw Self.storageError(error, site: site)
        }
    }

    private func exists(_ query: PostgresQuery, on connection: PostgresConnection) async throws -> Bool {
        var found = false
        for try await _ in try await connection.query(query, logger: logger) { found = true }
        return found
    }

    /// Our own errors as they are; Postgres errors by SQLSTATE, without the statement (it
    /// holds the password's verifier).
    static func storageError(_ error: any Error, site: String) -> any Error {
        let underlying = (error as? PostgresTransactionError).map { $0.closureError ?? $0.beginError ?? $0.commitError ?? error } ?? error
        if let storage = underlying as? StorageError { return storage }
        guard let postgres = underlying as? PSQLError else {
            return StorageError(code: .database, message: "BI role of site '\(site)': \(type(of: underlying))")
        }
        let message = postgres.serverInfo?[.message] ?? "no answer from Postgres"
        switch postgres.sqlState {
        case "42501":  // insufficient_privilege
            return StorageError(code: .privilege, message: "Tributary's Postgres role may not manage roles (it needs CREATEROLE): \(message)")
        case "42710", "23505":  // duplicate_object: created meanwhile by another database of the cluster
            return StorageError(code: .conflict, message: "the BI role of site '\(site)' is taken: \(message)")
        case "2BP01":  // dependent_objects_still_exist
            return StorageError(code: .conflict, message: "the BI role of site '\(site)' still owns objects: \(message)")
        default:
            return StorageError(code: .database, message: "BI role of site '\(site)': SQLSTATE \(postgres.sqlState ?? "?"): \(message)")
        }
    }

    /// 32 characters of [0-9A-Za-z] from the system's secure generator (about 190 bits). ASCII
    /// only, so SASLprep leaves it unchanged and any client computes the same SCRAM proof.
    static func generatePassword() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        return String((0..<32).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    /// A quoted SQL identifier (utility statements take no bind parameters).
    static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A quoted SQL string literal (standard_conforming_strings, the default since 9.1).
    static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

/// A SCRAM-SHA-256 password verifier in Postgres' format (RFC 5802 / RFC 7677):
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, all base64. Given to
/// `CREATE ROLE … PASSWORD`, Postgres stores it as it is, so the password itself never reaches
/// the server: not its statement log, not pg_stat_statements.
public enum SCRAMVerifier {
    public static func make(password: String, salt: [UInt8]? = nil, iterations: Int = 4096) -> String {
        let salt = salt ?? {
            var generator = SystemRandomNumberGenerator()
            return (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        }()
        let salted = saltedPassword(password, salt: salt, iterations: iterations)
        let clientKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: salted))
        let storedKey = Array(SHA256.hash(data: clientKey))
        let serverKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: salted))
        return "SCRAM-SHA-256$\(iterations):\(base64(salt))$\(base64(storedKey)):\(base64(serverKey))"
    }

    /// Hi() of RFC 5802: PBKDF2 with HMAC-SHA-256, one 32-byte block.
    static func saltedPassword(_ password: String, salt: [UInt8], iterations: Int) -> SymmetricKey {
        let key = SymmetricKey(data: Array(password.utf8))
        var block = Array(HMAC<SHA256>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var result = block
        for _ in 1..<max(iterations, 1) {
            block = Array(HMAC<SHA256>.authenticationCode(for: block, using: key))
            for index in result.indices { result[index] ^= block[index] }
        }
        return SymmetricKey(data: result)
    }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}
