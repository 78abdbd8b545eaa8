import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// An attempt that ran past its deadline: it was abandoned (and its connection closed).
public struct AttemptTimedOut: Error, CustomStringConvertible {
    public var timeout: Duration
    public var description: String { "no answer within \(timeout); the attempt was abandoned" }
}

extension PostgresClient {
    /// `withConnection`, bounded: when `body` has not returned within `timeout`, its
    /// connection is closed (failing whatever waits on it, and the pool opens a fresh one for
    /// the next attempt) and this throws `AttemptTimedOut` without waiting for `body` further.
    ///
    /// PostgresNIO's queries ignore task cancellation, and one written to a connection whose
    /// server went away (a Postgres restart) may never complete: a plain timeout that cancels
    /// and waits would wait forever too.
    public func withConnection<Result: Sendable>(
        timeout: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        // The connection is kept past the pool's "must not capture" only while `body` runs,
        // and closed under the same lock, so a connection back in the pool is never closed.
        let leased = LeasedConnection()
        return try await withDeadline(timeout) {
            leased.connection.withLock { connection in let _: EventLoopFuture<Void>? = connection?.close() }
        } operation: {
            try await self.withConnection { connection in
                leased.connection.withLock { $0 = connection }
                defer { leased.connection.withLock { $0 = nil } }
                return try await body(connection)
            }
        }
    }
}

private final class LeasedConnection: Sendable {
    let connection = Mutex<PostgresConnection?>(nil)
}

/// Runs `operation` in a task of its own and returns its result, unless `timeout` passes
/// first (or the caller is cancelled): then the task is cancelled, `onAbandon` runs, and this
/// throws `AttemptTimedOut` (or `CancellationError`) at once, leaving the task behind. For
/// reads that may hang on a dead Postgres connection and have no effect when abandoned.
public func withDeadline<Result: Sendable>(
    _ timeout: Duration, onAbandon: @escaping @Sendable () -> Void = {},
    operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let waiter = FirstResult<Result>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            waiter.start(continuation)
            let work = Task {
                let result: Swift.Result<Result, any Error>
                do { result = .success(try await operation()) } catch { result = .failure(error) }
                waiter.finish(result)
            }
            waiter.cancelOnFinish(work)
            let timer = Task {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                if waiter.finish(.failure(AttemptTimedOut(timeout: timeout))) { onAbandon() }
            }
            waiter.cancelOnFinish(timer)
        }
    } onCancel: {
        if waiter.finish(.failure(CancellationError())) { onAbandon() }
    }
}

/// Resumes one waiter with whichever result comes first, then cancels the tasks racing for it.
private final class FirstResult<Result: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result, any Error>?
        var finished = false
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<Result, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func cancelOnFinish(_ task: Task<Void, Never>) {
        let finished = state.withLock { state in
            if !state.finished { state.tasks.append(task) }
            return state.finished
        }
        if finished { task.cancel() }
    }

    /// True when this result was the first.
    @discardableResult
    func finish(_ result: Swift.Result<Result, any Error>) -> Bool {
        let won: (CheckedContinuation<Result, any Error>, [Task<Void, Never>])? = state.withLock { state in
            guard !state.finished, let continuation = state.continuation else { return nil }
            state.finished = true
            state.continuation = nil
            defer { state.tasks.removeAll() }
            return (continuation, state.tasks)
        }
        guard let (continuation, tasks) = won else { return false }
        for task in tasks { task.cancel() }
        continuation.resume(with: result)
        return true
    }
}
