import CRdKafka
import Foundation
import Logging
import Synchronization

/// An idempotent producer (`acks=all`) whose `send` returns only after the broker has
/// acknowledged every message it was given, or throws if any was not.
///
/// A dedicated thread serves librdkafka's delivery reports, so no call ever blocks the
/// cooperative thread pool. When the broker fences the producer or librdkafka reports a fatal
/// idempotence error (as after a long broker outage), the handle is replaced by a fresh one,
/// so the producer recovers by itself.
public final class KafkaProducer: Sendable {
    private let properties: [String: String]
    private let context: CallbackContext
    private let core: Mutex<ProducerCore>
    private let closed = RunningFlag()
    private let logger: Logger

    /// With `replay`, every message delivered to its topic is kept there until `LogReplay`
    /// drops it (see `ReplayBuffer`).
    public init(configuration: KafkaConfiguration, replay: ReplayBuffer? = nil, logger: Logger) throws(KafkaError) {
        var properties = RdKafkaClient.baseProperties(configuration)
        properties["enable.idempotence"] = "true"
        properties["acks"] = "all"
        properties["linger.ms"] = String(configuration.linger.milliseconds)
        properties["message.timeout.ms"] = String(configuration.messageTimeout.milliseconds)
        properties["queue.buffering.max.messages"] = "1000000"
        properties["compression.type"] = "lz4"
        properties.merge(configuration.properties) { _, new in new }
        self.properties = properties
        self.context = CallbackContext(logger: logger, replay: replay)
        self.logger = logger
        self.core = Mutex(try ProducerCore(properties: properties, context: context))
    }

    deinit {
        core.withLock { $0.stop() }
    }

    /// Produces the messages and waits until the broker acknowledged all of them.
    /// Throws `.timedOut` when the broker could not be reached within the message timeout.
    public func send(_ messages: [KafkaOutgoingMessage]) async throws(KafkaError) {
        guard !messages.isEmpty else { return }
        try await enqueue(messages).wait()
    }

    /// Enqueues the messages (after every message enqueued before) and returns without
    /// waiting for the broker: `wait()` on the result waits for their acknowledgements, so a
    /// caller can do other work meanwhile. `send` is `enqueue` and `wait`.
    public func enqueue(_ messages: [KafkaOutgoingMessage]) async throws(KafkaError) -> KafkaDeliveries {
        guard closed.isRunning else { throw KafkaError(code: .closed, message: "producer is shut down") }
        if context.broker.isDown {
            throw KafkaError(code: .unavailable, message: "every broker is down (refused without waiting; the producer notices within a second when one answers again)")
        }
        let current = core.withLock { $0 }
        let batch = DeliveryBatch(count: messages.count)
        if !messages.isEmpty { await current.enqueue(messages, batch: batch) }
        return KafkaDeliveries(producer: self, core: current, batch: batch)
    }

    /// The delivery reports of one `enqueue` call.
    public struct KafkaDeliveries: Sendable {
        fileprivate let producer: KafkaProducer
        fileprivate let core: ProducerCore
        fileprivate let batch: DeliveryBatch

        /// Returns when the broker acknowledged every message; throws the first failure
        /// (`.timedOut` when the broker could not be reached within the message timeout).
        public func wait() async throws(KafkaError) {
            do {
                try await batch.wait()
            } catch {
                if core.isUnrecoverable(after: error) { producer.replace(core, because: error) }
                throw error
            }
        }
    }

    public func send(_ message: KafkaOutgoingMessage) async throws(KafkaError) {
        try await send([message])
    }

    /// Swaps in a fresh handle, unless another caller already did.
    private func replace(_ failed: ProducerCore, because error: KafkaError) {
        core.withLock { current in
            guard current === failed else { return }
            do {
                current = try ProducerCore(properties: properties, context: context)
                failed.stop()
                logger.warning("kafka producer replaced after an unrecoverable error: \(error.message)")
            } catch {
                logger.error("kafka producer could not be recreated: \(error)")
            }
        }
    }

    /// Waits until every enqueued message was delivered or failed.
    public func flush(timeout: Duration = .seconds(10)) {
        let current = core.withLock { $0 }
        let error = rd_kafka_flush(current.client.handle, Int32(timeout.milliseconds))
        if error != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("producer flush did not complete: \(String(cString: rd_kafka_err2str(error)))")
        }
    }

    /// Flushes and stops the delivery thread. Further sends throw `.closed`.
    public func shutdown(timeout: Duration = .seconds(10)) {
        flush(timeout: timeout)
        closed.stop()
        core.withLock { $0.stop() }
    }
}

/// One librdkafka producer handle with its delivery-report thread and topic handles.
final class ProducerCore: Sendable {
    let client: RdKafkaClient
    private let context: CallbackContext
    private let running = RunningFlag()
    private let topics: Mutex<[String: OpaquePointer]> = Mutex([:])

    init(properties: [String: String], context: CallbackContext) throws(KafkaError) {
        // The client keeps the context alive as long as its handle: the poller thread may
        // outlive the KafkaProducer, and librdkafka logs through the context until destroyed.
        self.context = context
        client = try RdKafkaClient(kind: .producer, properties: properties, context: context) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let message, let batchPointer = message.pointee._private else { return }
                if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR, let context = CallbackContext.from(opaque) {
                    context.broker.answered()
                    if let replay = context.replay { retain(message.pointee, in: replay) }
                }
                // Each enqueued message holds one retain on its batch, released here.
                let batch = Unmanaged<DeliveryBatch>.fromOpaque(batchPointer).takeRetainedValue()
                batch.delivered(error: message.pointee.err)
            }
        }
        // The thread keeps this core (and so the handle) alive until it stops: the topic handles
        // and the client are destroyed after the last poll, in that order.
        let poller = Thread { [self] in
            var nextProbe = ContinuousClock.now
            while running.isRunning {
                rd_kafka_poll(client.handle, 100)
                if context.broker.isDown && ContinuousClock.now >= nextProbe {
                    nextProbe = .now + BrokerState.probeInterval
                    if client.answers(within: .milliseconds(500)) { context.broker.answered() }
                }
            }
            // Serve the reports of what is still queued, so no sender waits forever.
            rd_kafka_flush(client.handle, 1000)
            rd_kafka_purge(client.handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
            rd_kafka_poll(client.handle, 0)
        }
        poller.name = "kafka-producer-poll"
        poller.start()
    }

    deinit {
        for (_, topic) in topics.withLock({ $0 }) { rd_kafka_topic_destroy(topic) }
    }

    func stop() { running.stop() }

    /// True when this handle cannot deliver any more: fenced, a fatal idempotence error, or a
    /// delivery that timed out while the broker answers. The last is a stuck handle: after a
    /// broker came back without its topics, librdkafka's idempotent producer was seen to let
    /// every message time out for minutes although the topics existed again.
    func isUnrecoverable(after error: KafkaError) -> Bool {
        if error.code == .timedOut && !context.broker.isDown { return true }
        var text = [CChar](repeating: 0, count: 256)
        if rd_kafka_fatal_error(client.handle, &text, text.count) != RD_KAFKA_RESP_ERR_NO_ERROR { return true }
        let fencing: Set<Int32> = [
            RD_KAFKA_RESP_ERR_PRODUCER_FENCED.rawValue, RD_KAFKA_RESP_ERR__FENCED.rawValue,
            RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH.rawValue, RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID.rawValue,
            RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER.rawValue, RD_KAFKA_RESP_ERR__FATAL.rawValue,
        ]
        return error.rdkafkaCode.map(fencing.contains) ?? false
    }

    func enqueue(_ messages: [KafkaOutgoingMessage], batch: DeliveryBatch) async {
        for (index, message) in messages.enumerated() {
            let topic = topicHandle(message.topic)
            let opaque = Unmanaged.passRetained(batch).toOpaque()
            while true {
                let status = message.value.withUnsafeBytes { value in
                    withKey(message.key) { keyPointer, keyLength in
                        rd_kafka_produce(
                            topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                            UnsafeMutableRawPointer(mutating: value.baseAddress), value.count,
                            keyPointer, keyLength, opaque
                        )
                    }
                }
                if status == 0 { break }
                let error = rd_kafka_last_error()
                if error == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                    // Local queue full: wait for deliveries to drain it, then retry.
                    try? await Task.sleep(for: .milliseconds(5))
                    continue
                }
                Unmanaged<DeliveryBatch>.fromOpaque(opaque).release()
                // The messages not enqueued will never get a delivery report: count them as failed.
                batch.failEnqueue(remaining: messages.count - index, error: KafkaError(code: .delivery, "produce to \(message.topic)", error: error))
                return
            }
        }
    }

    private func topicHandle(_ name: String) -> OpaquePointer {
        topics.withLock { handles in
            if let handle = handles[name] { return handle }
            let handle = rd_kafka_topic_new(client.handle, name, nil)!
            handles[name] = handle
            return handle
        }
    }
}

/// Hands a delivered message of the buffer's topic to its replay buffer.
private func retain(_ message: rd_kafka_message_t, in replay: ReplayBuffer) {
    guard let name = rd_kafka_topic_name(message.rkt), replay.topic.withCString({ strcmp($0, name) == 0 }) else { return }
    let value = UnsafeRawBufferPointer(start: message.payload, count: message.len)
    let key = message.key.map { UnsafeRawBufferPointer(start: $0, count: message.key_len) }
    replay.retain(partition: message.partition, offset: message.offset, key: key, value: value)
}

private func withKey<R>(_ key: [UInt8]?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let key else { return body(nil, 0) }
    return key.withUnsafeBytes { body($0.baseAddress, $0.count) }
}
/// Counts the delivery reports of one `send` call and resumes its caller after the last.
final class DeliveryBatch: Sendable {
    private struct State {
        var remaining: Int
        var firstError: KafkaError?
        var continuation: CheckedContinuation<Void, any Error>?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(remaining: count))
    }

    /// Returns when every message was reported; throws the first failure.
    func wait() async throws(KafkaError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, KafkaError>? = state.withLock { state in
                    guard state.remaining <= 0 else {
                        state.continuation = continuation
                        return nil
                    }
                    return state.firstError.map { .failure($0) } ?? .success(())
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } catch let error as KafkaError {
            throw error
        } catch {
            throw KafkaError(code: .delivery, message: "\(error)")
        }
    }

    func delivered(error: rd_kafka_resp_err_t) {
        let failure: KafkaError? = switch error {
        case RD_KAFKA_RESP_ERR_NO_ERROR: nil
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT:
            KafkaError(code: .timedOut, "delivery", error: error)
        default: KafkaError(code: .delivery, "delivery", error: error)
        }
        finish(count: 1, error: failure)
    }

    func failEnqueue(remaining: Int, error: KafkaError) {
        finish(count: remaining, error: error)
    }

    private func finish(count: Int, error: KafkaError?) {
        let resume: (CheckedContinuation<Void, any Error>, Result<Void, KafkaError>)? = state.withLock { state in
            state.remaining -= count
            if state.firstError == nil, let error { state.firstError = error }
            guard state.remaining <= 0, let continuation = state.continuation else { return nil }
            state.continuation = nil
            return (continuation, state.firstError.map { .failure($0) } ?? .success(()))
        }
        if let (continuation, result) = resume { continuation.resume(with: result) }
    }
}

/// A stop flag shared between an owner and its background thread.
final class RunningFlag: Sendable {
    private let flag = Atomic<Bool>(true)
    var isRunning: Bool { flag.load(ordering: .acquiring) }
    func stop() { flag.store(false, ordering: .releasing) }
}
