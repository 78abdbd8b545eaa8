import Foundation
import Logging
import PostgresNIO

/// Where the database is, parsed from a `postgres://user:password@host:port/database` URL.
public struct PostgresSettings: Sendable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// `sslmode=require` in the URL asks for TLS; otherwise plain TCP (loopback or a private network).
    public var requireTLS: Bool
    /// Connections in the pool. Default 8.
    public var maximumConnections: Int = 8

    public init(url: String) throws(StorageError) {
        guard let components = URLComponents(string: url),
              components.scheme == "postgres" || components.scheme == "postgresql",
              let host = components.host, !host.isEmpty
        else {
            throw StorageError(code: .configuration, message: "invalid Postgres URL (expected postgres://user@host:port/database)")
        }
        self.host = host
        port = components.port ?? 5432
        username = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        password = components.password.flatMap { $0.removingPercentEncoding }
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        database = path.isEmpty ? username : path
        requireTLS = components.queryItems?.contains { $0.name == "sslmode" && ($0.value == "require" || $0.value == "verify-full") } ?? false
    }

    /// A client with a connection pool. Run it (it is a `Service`) before querying.
    public func makeClient(logger: Logger) -> PostgresClient {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database,
            tls: requireTLS ? .require(.makeClientConfiguration()) : .disable
        )
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        // Postgres compiles a query to machine code once its estimated cost passes
        // jit_above_cost; for the reports' and the batches' statements that compile takes
        // longer (0.3-3 s, measured by make bench-queries) than running them.
        configuration.options.additionalStartupParameters = [("jit", "off")]
        return PostgresClient(configuration: configuration, backgroundLogger: logger)
    }
}

/// An error of the Storage module. Messages never contain SQL or credentials.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        public static let configuration = Code(name: "configuration")
        public static let migration = Code(name: "migration")
        public static let notFound = Code(name: "not_found")
        public static let conflict = Code(name: "conflict")
        public static let invalid = Code(name: "invalid")
        /// Our Postgres role lacks a privilege the operation needs (e.g. CREATEROLE).
        public static let privilege = Code(name: "privilege")
        /// Postgres refused for another reason; the message names the SQLSTATE.
        public static let database = Code(name: "database")
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "StorageError(\(code)): \(message)" }
}

extension PSQLError {
    /// The SQLSTATE code of a server error, e.g. `23505` for a unique violation.
    public var sqlState: String? { serverInfo?[.sqlState] }
}

extension PostgresClient {
    /// Runs statements one by one inside the current session (no binds).
    func execute(_ statements: [String], on connection: PostgresConnection, logger: Logger) async throws {
        for statement in statements {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
    }
}
