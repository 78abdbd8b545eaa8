import Dispatch
import Synchronization

/// The checkpoints in flight, oldest first: each commits after the one before it, and none
/// at all after one failed, until `reset`.
final class CheckpointPipeline: Sendable {
    private struct State {
        var tasks: [Task<Void, any Error>] = []
        /// The first failure since the last reset.
        var failure: (any Error)?
    }

    /// Checkpoints in flight before the batch being processed: one commits while the next
    /// one's outputs are acknowledged.
    static let depth = 2
    private let state = Mutex(State())
    private let running = DispatchGroup()

    var hasFailed: Bool { failure != nil }

    /// What failed first since the last reset.
    var failure: (any Error)? { state.withLock { $0.failure } }

    /// Starts a checkpoint after the last one; returns once at most `depth` are in flight.
    func append(_ checkpoint: @escaping @Sendable () async throws -> Void) async {
        running.enter()
        let oldest: Task<Void, any Error>? = state.withLock { state in
            let previous = state.tasks.last
            let task = Task { [self] in
                defer { running.leave() }
                do {
                    try await previous?.value
                    // A drain forgets the tasks but not a failure: a checkpoint queued after
                    // one that failed must not commit over the work it lost.
                    if hasFailed { throw CancellationError() }
                    try await checkpoint()
                } catch {
                    fail(error)
                    throw error
                }
            }
            state.tasks.append(task)
            return state.tasks.count > Self.depth ? state.tasks.removeFirst() : nil
        }
        _ = await oldest?.result
    }

    /// Waits for every checkpoint in flight.
    func drain() async {
        let tasks = state.withLock { state in
            defer { state.tasks.removeAll() }
            return state.tasks
        }
        for task in tasks { _ = await task.result }
    }

    /// Blocks the calling thread (never a cooperative one) until no checkpoint is in flight.
    func waitUntilIdle() { running.wait() }

    /// Stops every later checkpoint from committing (the batch before it was lost).
    func fail(_ error: any Error) { state.withLock { $0.failure = $0.failure ?? error } }

    /// Forgets a failure once the work after the last committed checkpoint is being redone.
    func reset() { state.withLock { $0.failure = nil } }
}
