import CRdKafka
import Logging
import Synchronization

/// Owns one `rd_kafka_t` handle. librdkafka handles are thread-safe; this type only adds
/// creation from a property map and destruction.
final class RdKafkaClient: @unchecked Sendable {
    // Safe to share: librdkafka documents rd_kafka_t as thread-safe, and `handle` never changes.
    let handle: OpaquePointer
    /// What librdkafka's callbacks point at (their opaque): released only after the handle is
    /// destroyed, since stored properties outlive `deinit`'s body.
    private let callbackContext: CallbackContext?

    enum Kind {
        case producer
        case consumer
    }

    /// Creates the handle. `configure` may install callbacks on the conf before it is consumed.
    init(kind: Kind, properties: [String: String], context: CallbackContext? = nil, configure: (OpaquePointer) -> Void = { _ in }) throws(KafkaError) {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(code: .configuration, message: "rd_kafka_conf_new failed") }
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errorText, errorText.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(code: .configuration, message: "\(key): \(text(errorText))")
            }
        }
        context?.install(on: conf)
        configure(conf)
        // rd_kafka_new takes ownership of conf on success only.
        guard let handle = rd_kafka_new(kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: .configuration, message: text(errorText))
        }
        self.handle = handle
        self.callbackContext = context
    }

    deinit {
        rd_kafka_destroy(handle)
    }

    static func baseProperties(_ configuration: KafkaConfiguration) -> [String: String] {
        [
            "bootstrap.servers": configuration.brokers,
            "client.id": configuration.clientId,
            "log.connection.close": "false",
            // Topics are created on purpose by `tributary migrate`; an auto-created one would
            // silently get the broker's default partition count.
            "allow.auto.create.topics": "false",
        ]
    }

    /// Fetches cluster metadata: the partition count of each named topic (nil = all topics).
    func partitionCounts(topics: [String]?, timeout: Duration) throws(KafkaError) -> [String: Int] {
        var counts: [String: Int] = [:]
        try forEachTopic(timeout: timeout) { topic in
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { return }
            let name = String(cString: topic.topic)
            if topics == nil || topics!.contains(name) { counts[name] = Int(topic.partition_cnt) }
        }
        return counts
    }

    /// The names among `topics` that the broker does not know: absent from its metadata or
    /// answered with "unknown topic". A topic that exists but has no leader right now (a
    /// broker restarting) is not missing.
    func unknownTopics(_ topics: [String], timeout: Duration) throws(KafkaError) -> [String] {
        var known = Set<String>()
        try forEachTopic(timeout: timeout) { topic in
            guard let name = topic.topic, topic.err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART else { return }
            known.insert(String(cString: name))
        }
        return topics.filter { !known.contains($0) }
    }

    /// One metadata request for all topics; `body` sees each topic of the answer.
    private func forEachTopic(timeout: Duration, _ body: (rd_kafka_metadata_topic) -> Void) throws(KafkaError) {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 1, nil, &metadata, Int32(timeout.milliseconds))
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError(code: .operation, "metadata request", error: error)
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        for index in 0..<Int(metadata.pointee.topic_cnt) { body(metadata.pointee.topics[index]) }
    }

    /// True when a broker answers a metadata request (for the locally known topics) in time.
    func answers(within timeout: Duration) -> Bool {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, nil, &metadata, Int32(timeout.milliseconds))
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        return error == RD_KAFKA_RESP_ERR_NO_ERROR
    }

    /// The low and high watermark offsets of a partition, asked of the broker.
    func watermarks(_ partition: TopicPartition, timeout: Duration) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let error = rd_kafka_query_watermark_offsets(handle, partition.topic, partition.partition, &low, &high, Int32(timeout.milliseconds))
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: .operation, "watermarks of \(partition)", error: error) }
        return (low, high)
    }
}

/// Forwards librdkafka's own log lines and errors to swift-log. The conf's opaque points at a
/// `CallbackContext` kept alive by the owning producer or consumer.
final class CallbackContext: @unchecked Sendable {
    // Immutable after init; Logger is Sendable.
    let logger: Logger
    let onRebalance: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)?
    /// Whether the broker answers, as librdkafka's error callback and deliveries tell.
    let broker = BrokerState()
    /// A producer's buffer of delivered messages, filled by its delivery reports.
    let replay: ReplayBuffer?

    init(logger: Logger, replay: ReplayBuffer? = nil,
         onRebalance: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)? = nil) {
        self.logger = logger
        self.replay = replay
        self.onRebalance = onRebalance
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> CallbackContext? {
        guard let opaque else { return nil }
        return Unmanaged<CallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    }

    /// Installs log and error callbacks on a conf, pointing them at this context.
    func install(on conf: OpaquePointer) {
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(self).toOpaque())
        rd_kafka_conf_set_log_cb(conf) { handle, level, facility, message in
            guard let handle, let context = CallbackContext.from(rd_kafka_opaque(handle)) else { return }
            let text = "\(facility.map { String(cString: $0) } ?? ""): \(message.map { String(cString: $0) } ?? "")"
            switch level {
            case 0...3: context.logger.error("librdkafka \(text)")
            case 4: context.logger.warning("librdkafka \(text)")
            case 5, 6: context.logger.info("librdkafka \(text)")
            default: context.logger.debug("librdkafka \(text)")
            }
        }
        rd_kafka_conf_set_error_cb(conf) { _, error, reason, opaque in
            guard let context = CallbackContext.from(opaque) else { return }
            if error == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue { context.broker.allDown() }
            let fatal = error == RD_KAFKA_RESP_ERR__FATAL.rawValue
            let text = reason.map { String(cString: $0) } ?? String(cString: rd_kafka_err2str(rd_kafka_resp_err_t(error)))
            if fatal {
                context.logger.critical("kafka fatal error: \(text)")
            } else {
                context.logger.warning("kafka: \(text)")
            }
        }
    }
}

/// Whether every broker is known to be down: set when librdkafka reports it, cleared by the
/// next acknowledged delivery or answered metadata request. While it is set a producer
/// refuses sends at once instead of holding each for its whole message timeout, and its
/// poller thread asks the broker for metadata every `probeInterval` to notice its return.
final class BrokerState: Sendable {
    private let down = Atomic<Bool>(false)
    static let probeInterval: Duration = .seconds(1)

    var isDown: Bool { down.load(ordering: .acquiring) }
    func allDown() { down.store(true, ordering: .releasing) }
    func answered() { down.store(false, ordering: .releasing) }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Builds a librdkafka partition list; the caller destroys it.
func makePartitionList(_ entries: [(TopicPartition, Int64?)]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
    let list = rd_kafka_topic_partition_list_new(Int32(entries.count))!
    for (partition, offset) in entries {
        let element = rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)!
        if let offset { element.pointee.offset = offset }
    }
    return list
}

func readPartitionList(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [(TopicPartition, Int64, rd_kafka_resp_err_t)] {
    (0..<Int(list.pointee.cnt)).map { index in
        let element = list.pointee.elems[index]
        return (TopicPartition(topic: String(cString: element.topic), partition: element.partition), element.offset, element.err)
    }
}

/// The text of a NUL-terminated error buffer filled by librdkafka.
func text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
