import Contracts
import Crypto
import Foundation
import Logging
import PostgresNIO

/// A site: one shop whose events are collected and reported separately.
public struct Site: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    /// IANA time zone that decides report days. Default `UTC`.
    public var timezone: String
    /// Origins browsers may send events from, e.g. `https://shop.example`.
    public var allowedOrigins: [String]
    /// Inactivity after which a new session starts. Default 30.
    public var sessionTimeoutMinutes: Int
    /// Longest a session may last. Default 1440 (24 hours).
    public var sessionMaxLengthMinutes: Int
    /// Start a new session at midnight in the site's time zone. Default false.
    public var splitSessionsAtMidnight: Bool
    /// ISO 4217 code used where a payload has an amount but no currency (Convead's orders, for
    /// one); such events are marked `currency_defaulted`. None by default: such amounts are refused.
    public var defaultCurrency: String?
    /// A cart with no purchase within this many minutes of its last change is abandoned.
    /// Default 1440 (24 hours).
    public var cartAbandonmentMinutes: Int

    public init(id: String, name: String, timezone: String = "UTC", allowedOrigins: [String] = [], sessionTimeoutMinutes: Int = 30,
                sessionMaxLengthMinutes: Int = 1440, splitSessionsAtMidnight: Bool = false, defaultCurrency: String? = nil,
                cartAbandonmentMinutes: Int = 1440) {
        self.id = id
        self.name = name
        self.timezone = timezone
        self.allowedOrigins = allowedOrigins
        self.sessionTimeoutMinutes = sessionTimeoutMinutes
        self.sessionMaxLengthMinutes = sessionMaxLengthMinutes
        self.splitSessionsAtMidnight = splitSessionsAtMidnight
        self.defaultCurrency = defaultCurrency
        self.cartAbandonmentMinutes = cartAbandonmentMinutes
    }

    enum CodingKeys: String, CodingKey {
        case id, name, timezone, allowedOrigins = "allowed_origins", sessionTimeoutMinutes = "session_timeout_minutes"
        case sessionMaxLengthMinutes = "session_max_length_minutes", splitSessionsAtMidnight = "split_sessions_at_midnight"
        case defaultCurrency = "default_currency", cartAbandonmentMinutes = "cart_abandonment_minutes"
    }
}

/// What a key may do.
public enum KeyKind: String, Sendable, Codable {
    /// Sends server events for its site.
    case server
    /// Reads its site's reports.
    case read
    /// Reads its site's reports and manages its goals, funnels, integrations and destinations:
    /// the key an agency hands the shop, nothing of any other site.
    case owner
}

/// The keys of a site, in clear text: returned once, at creation or rotation.
public struct SiteKeys: Sendable, Codable {
    public var serverKey: String
    public var readKey: String
    public var ownerKey: String

    enum CodingKeys: String, CodingKey {
        case serverKey = "server_key", readKey = "read_key", ownerKey = "owner_key"
    }
}

/// Sites and their hashed keys in schema `control`.
public struct SiteStore: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// SHA-256 of a key, hex. Keys are random 192-bit secrets, so a plain hash suffices.
    public static func hash(key: String) -> String {
        sha256Hex(key)
    }

    static func generateKey(kind: KeyKind) -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        let body = String((0..<32).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
        let prefix = switch kind {
        case .server: "sk_"
        case .read: "rk_"
        case .owner: "ok_"
        }
        return prefix + body
    }

    /// Creates a site with a fresh server, read and owner key. Throws `.conflict` if the id exists.
    public func create(_ site: Site) async throws -> SiteKeys {
        guard TimeZone(identifier: site.timezone) != nil else {
            throw StorageError(code: .invalid, message: "timezone '\(site.timezone)' is not an IANA time zone")
        }
        let keys = SiteKeys(serverKey: Self.generateKey(kind: .server), readKey: Self.generateKey(kind: .read), ownerKey: Self.generateKey(kind: .owner))
        do {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("""
                    INSERT INTO control.sites (id, name, timezone, allowed_origins, session_timeout_minutes,
                                               session_max_length_minutes, split_sessions_at_midnight, default_currency,
                                               cart_abandonment_minutes)
                    VALUES (\(site.id), \(site.name), \(site.timezone), \(site.allowedOrigins), \(site.sessionTimeoutMinutes),
                            \(site.sessionMaxLengthMinutes), \(site.splitSessionsAtMidnight), \(site.defaultCurrency),
                            \(site.cartAbandonmentMinutes))
                    """, logger: logger)
                try await insertKeys(keys, site: site.id, on: connection)
            }
        } catch let error as PostgresTransactionError {
            if let closureError = error.closureError as? PSQLError, closureError.sqlState == "23505" {
                throw StorageError(code: .conflict, message: "site '\(site.id)' already exists")
            }
            if let closureError = error.closureError as? PSQLError, closureError.sqlState == "23514" {
                throw StorageError(code: .invalid, message: "site id or settings are invalid")
            }
            throw error
        }
        return keys
    }

    /// Stores a site's settings (everything but its id); false when the site does not exist.
    public func update(_ site: Site) async throws -> Bool {
        guard TimeZone(identifier: site.timezone) != nil else {
            throw StorageError(code: .invalid, message: "timezone '\(site.timezone)' is not an IANA time zone")
        }
        let rows = try await client.query("""
            UPDATE control.sites SET name = \(site.name), timezone = \(site.timezone), allowed_origins = \(site.allowedOrigins),
                   session_timeout_minutes = \(site.sessionTimeoutMinutes), session_max_length_minutes = \(site.sessionMaxLengthMinutes),
                   split_sessions_at_midnight = \(site.splitSessionsAtMidnight), default_currency = \(site.defaultCurrency),
                   cart_abandonment_minutes = \(site.cartAbandonmentMinutes)
            WHERE id = \(site.id) RETURNING 1
            """, logger: logger)
        var found = false
        for try await _ in rows { found = true }
        return found
    }

    /// Revokes the site's current keys and returns new ones.
    public func rotateKeys(site: String) async throws -> SiteKeys {
        let keys = SiteKeys(serverKey: Self.generateKey(kind: .server), readKey: Self.generateKey(kind: .read), ownerKey: Self.generateKey(kind: .owner))
        let found = try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("SELECT 1 FROM control.sites WHERE id = \(site) FOR UPDATE", logger: logger)
            var exists = false
            for try await _ in rows { exists = true }
            guard exists else { return false }
            try await connection.query("UPDATE control.keys SET revoked_at = now() WHERE site_id = \(site) AND revoked_at IS NULL", logger: logger)
            try await insertKeys(keys, site: site, on: connection)
            return true
        }
        guard found else { throw StorageError(code: .notFound, message: "site '\(site)' does not exist") }
        return keys
    }

    private func insertKeys(_ keys: SiteKeys, site: String, on connection: PostgresConnection) async throws {
        for (key, kind) in [(keys.serverKey, KeyKind.server), (keys.readKey, KeyKind.read), (keys.ownerKey, KeyKind.owner)] {
            let hash = Self.hash(key: key)
            let prefix = String(key.prefix(8))
            try await connection.query("""
                INSERT INTO control.keys (key_hash, site_id, kind, prefix) VALUES (\(hash), \(site), \(kind.rawValue), \(prefix))
                """, logger: logger)
        }
    }

    public func list() async throws -> [Site] {
        try await sites(where: "true")
    }

    public func site(id: String) async throws -> Site? {
        try await sites(where: "id = \(id)").first
    }

    /// The sites matching `condition`, by id.
    private func sites(where condition: SQLFragment) async throws -> [Site] {
        let statement: SQLFragment = """
            SELECT id, name, timezone, allowed_origins, session_timeout_minutes, session_max_length_minutes, split_sessions_at_midnight,
                   default_currency, cart_abandonment_minutes
            FROM control.sites WHERE \(condition) ORDER BY id
            """
        let rows = try await client.query(statement.query, logger: logger)
        var sites: [Site] = []
        for try await (id, name, timezone, origins, timeout, maxLength, split, currency, cartWindow)
            in rows.decode((String, String, String, [String], Int, Int, Bool, String?, Int).self) {
            sites.append(Site(id: id, name: name, timezone: timezone, allowedOrigins: origins, sessionTimeoutMinutes: timeout,
                              sessionMaxLengthMinutes: maxLength, splitSessionsAtMidnight: split, defaultCurrency: currency,
                              cartAbandonmentMinutes: cartWindow))
        }
        return sites
    }

    /// The site and kind of a valid (not revoked) key.
    public func resolve(key: String) async throws -> (site: String, kind: KeyKind)? {
        let hash = Self.hash(key: key)
        let rows = try await client.query(
            "SELECT site_id, kind FROM control.keys WHERE key_hash = \(hash) AND revoked_at IS NULL", logger: logger)
        for try await (site, kind) in rows.decode((String, String).self) {
            if let kind = KeyKind(rawValue: kind) { return (site, kind) }
        }
        return nil
    }
}
