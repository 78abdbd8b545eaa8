import Logging
import PostgresNIO

extension PostgresConnection {
    /// Runs a statement and reads its whole answer. PostgresNIO reports an error that comes
    /// after the first row description only to whoever reads the rows; a statement whose rows
    /// nobody read could fail silently and leave the transaction aborted.
    public func run(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }

    /// `run` for fixed SQL text (never user input: values belong in bindings).
    public func run(fixed sql: String, logger: Logger) async throws {
        try await run(PostgresQuery(unsafeSQL: sql), logger: logger)
    }
}
