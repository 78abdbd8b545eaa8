import Foundation
import Logging
import PostgresNIO

/// A payment processor whose webhooks a site receives.
public enum Processor: String, Sendable, CaseIterable, Codable {
    case stripe
    case shopify

    /// The processor fields a shop may take its order id from, the default first.
    public var orderIdFields: [String] {
        switch self {
        // `metadata.order_id` when the payment carries one, else the checkout session's or
        // the payment intent's id; the other two choices force one of those.
        case .stripe: ["metadata.order_id", "checkout_session", "payment_intent"]
        // Shopify's numeric order `id`, or its display `name` (#1001) as shops print it.
        case .shopify: ["id", "name"]
        }
    }
}

/// A site's processor integration as the API shows it: never a secret, only which are set.
public struct IntegrationInfo: Sendable, Hashable {
    public struct Secret: Sendable, Hashable {
        public var id: Int
        public var addedAt: Date
    }

    public var processor: Processor
    public var orderIdField: String
    public var secrets: [Secret]
}

/// What the Collector needs to verify and map a site's webhook.
public struct IntegrationSecrets: Sendable {
    public var orderIdField: String
    /// Every current secret: during a rotation a signature made with either is valid.
    public var secrets: [String]
}

/// Processor integrations and their sealed webhook secrets in schema `control`.
public struct IntegrationStore: Sendable {
    /// Secrets kept per site and processor: the current one and, during a rotation, the next.
    public static let maximumSecrets = 2

    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    static func context(site: String, processor: Processor) -> String { "\(processor.rawValue)/\(site)" }

    /// Creates or updates the integration. A `secret` replaces the stored ones, or with
    /// `rotate` is added beside them (`.conflict` when `maximumSecrets` are stored); an
    /// `orderIdField` must be one of the processor's. Throws `.notFound` for an unknown site,
    /// `.invalid` for a first call without a secret.
    public func put(site: String, processor: Processor, secret: String?, rotate: Bool, orderIdField: String?,
                    box: SecretBox) async throws {
        let sealed = try secret.map { Data(try box.seal($0, context: Self.context(site: site, processor: processor))) }
        if let orderIdField, !processor.orderIdFields.contains(orderIdField) {
            throw StorageError(code: .invalid, message: "order_id_field of \(processor.rawValue) is one of \(processor.orderIdFields.joined(separator: ", "))")
        }
        do {
            try await store(site: site, processor: processor, sealed: sealed, rotate: rotate, orderIdField: orderIdField)
        } catch let error as PostgresTransactionError {
            throw (error.closureError as? StorageError) ?? error
        }
    }

    private func store(site: String, processor: Processor, sealed: Data?, rotate: Bool, orderIdField: String?) async throws {
        try await client.withTransaction(logger: logger) { connection in
            let exists = try await connection.query("SELECT 1 FROM control.sites WHERE id = \(site) FOR UPDATE", logger: logger)
            var found = false
            for try await _ in exists { found = true }
            guard found else { throw StorageError(code: .notFound, message: "site '\(site)' does not exist") }
            let field = orderIdField ?? processor.orderIdFields[0]
            let rows = try await connection.query("""
                INSERT INTO control.integrations (site, processor, order_id_field) VALUES (\(site), \(processor.rawValue), \(field))
                ON CONFLICT (site, processor) DO UPDATE SET order_id_field = coalesce(\(orderIdField), control.integrations.order_id_field)
                RETURNING (xmax = 0)
                """, logger: logger)
            var created = false
            for try await (inserted) in rows.decode(Bool.self) { created = inserted }
            guard let sealed else {
                if created { throw StorageError(code: .invalid, message: "webhook_secret is required to set up \(processor.rawValue)") }
                return
            }
            if rotate {
                // Dropping the oldest would silently drop the secret the processor may still sign with.
                let count = try await connection.query("""
                    SELECT count(*)::int8 FROM control.integration_secrets WHERE site = \(site) AND processor = \(processor.rawValue)
                    """, logger: logger)
                for try await stored in count.decode(Int64.self) where stored >= Self.maximumSecrets {
                    throw StorageError(code: .conflict, message: "\(processor.rawValue) has \(Self.maximumSecrets) secrets already: drop the old one first")
                }
            } else {
                try await connection.query("DELETE FROM control.integration_secrets WHERE site = \(site) AND processor = \(processor.rawValue)", logger: logger)
            }
            try await connection.query("""
                INSERT INTO control.integration_secrets (site, processor, secret_id, sealed)
                SELECT \(site), \(processor.rawValue), coalesce(max(secret_id), 0) + 1, \(sealed)
                FROM control.integration_secrets WHERE site = \(site) AND processor = \(processor.rawValue)
                """, logger: logger)
        }
    }

    public func info(site: String, processor: Processor) async throws -> IntegrationInfo? {
        let rows = try await client.query("""
            SELECT i.order_id_field, s.secret_id, s.added_at
            FROM control.integrations i LEFT JOIN control.integration_secrets s USING (site, processor)
            WHERE i.site = \(site) AND i.processor = \(processor.rawValue) ORDER BY s.secret_id
            """, logger: logger)
        var info: IntegrationInfo?
        for try await (field, id, addedAt) in rows.decode((String, Int?, Date?).self) {
            if info == nil { info = IntegrationInfo(processor: processor, orderIdField: field, secrets: []) }
            if let id, let addedAt { info?.secrets.append(.init(id: id, addedAt: addedAt)) }
        }
        return info
    }

    /// Removes the integration and its secrets; false when there was none.
    public func delete(site: String, processor: Processor) async throws -> Bool {
        try await exists(client.query("DELETE FROM control.integrations WHERE site = \(site) AND processor = \(processor.rawValue) RETURNING 1", logger: logger))
    }

    /// Drops one secret (the old one, after a rotation); the last one cannot be dropped.
    public func dropSecret(site: String, processor: Processor, id: Int) async throws -> Bool {
        try await exists(client.query("""
            DELETE FROM control.integration_secrets s WHERE site = \(site) AND processor = \(processor.rawValue) AND secret_id = \(id)
              AND EXISTS (SELECT FROM control.integration_secrets o
                          WHERE o.site = s.site AND o.processor = s.processor AND o.secret_id <> s.secret_id)
            RETURNING 1
            """, logger: logger))
    }

    /// The opened secrets of a site's integration; nil when it has none.
    public func secrets(site: String, processor: Processor, box: SecretBox) async throws -> IntegrationSecrets? {
        let rows = try await client.query("""
            SELECT i.order_id_field, s.sealed FROM control.integrations i JOIN control.integration_secrets s USING (site, processor)
            WHERE i.site = \(site) AND i.processor = \(processor.rawValue) ORDER BY s.secret_id
            """, logger: logger)
        var result: IntegrationSecrets?
        for try await (field, sealed) in rows.decode((String, Data).self) {
            let secret = try box.open(Array(sealed), context: Self.context(site: site, processor: processor))
            if result == nil { result = IntegrationSecrets(orderIdField: field, secrets: []) }
            result?.secrets.append(secret)
        }
        return result
    }

    /// Whether any site has an integration: then `TRIBUTARY_SECRET_KEY` must be set to start.
    public func anyConfigured() async throws -> Bool {
        try await exists(client.query("SELECT 1 FROM control.integration_secrets LIMIT 1", logger: logger))
    }

    private func exists(_ rows: PostgresRowSequence) async throws -> Bool {
        for try await _ in rows { return true }
        return false
    }
}
