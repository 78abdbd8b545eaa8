import CRdKafka
import Dispatch
import Logging

/// Topic administration through the Kafka protocol (works with Apache Kafka and Tansu alike).
public final class KafkaAdmin: Sendable {
    private let client: RdKafkaClient

    public init(configuration: KafkaConfiguration, logger: Logger) throws(KafkaError) {
        client = try RdKafkaClient(kind: .producer, properties: RdKafkaClient.baseProperties(configuration), context: CallbackContext(logger: logger))
    }

    public struct TopicSpec: Sendable {
        public var name: String
        public var partitions: Int
        /// Topic-level configs, e.g. `cleanup.policy=compact`.
        public var configs: [String: String]

        public init(name: String, partitions: Int, configs: [String: String] = [:]) {
            self.name = name
            self.partitions = partitions
            self.configs = configs
        }
    }

    /// Creates the topics that do not exist yet; returns the names it created. An existing
    /// topic is left as it is (its partition count is reported by `partitionCounts`).
    public func ensureTopics(_ specs: [TopicSpec], timeout: Duration = .seconds(30)) async throws(KafkaError) -> [String] {
        let result: Result<[String], KafkaError> = await runBlocking { [client] in
            do throws(KafkaError) {
                let existing = try client.partitionCounts(topics: nil, timeout: timeout)
                let missing = specs.filter { existing[$0.name] == nil }
                guard !missing.isEmpty else { return .success([]) }
                return .success(try Self.create(missing, client: client, timeout: timeout))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The names among `topics` that the broker does not know (`unknownTopics`); a topic
    /// without a leader for the moment is not missing.
    public func missingTopics(_ topics: [String], timeout: Duration = .seconds(10)) async throws(KafkaError) -> [String] {
        let result: Result<[String], KafkaError> = await runBlocking { [client] in
            do throws(KafkaError) { return .success(try client.unknownTopics(topics, timeout: timeout)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Partition counts of the named topics that exist.
    public func partitionCounts(_ topics: [String], timeout: Duration = .seconds(10)) async throws(KafkaError) -> [String: Int] {
        let result: Result<[String: Int], KafkaError> = await runBlocking { [client] in
            do throws(KafkaError) { return .success(try client.partitionCounts(topics: topics, timeout: timeout)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// True when the broker answers a metadata request within the timeout (for `/readyz`).
    public func isReachable(timeout: Duration = .seconds(2)) async -> Bool {
        await runBlocking { [client] in (try? client.partitionCounts(topics: [], timeout: timeout)) != nil }
    }

    /// Low and high watermarks of a partition.
    public func watermarks(_ partition: TopicPartition, timeout: Duration = .seconds(10)) async throws(KafkaError) -> (low: Int64, high: Int64) {
        let result: Result<(low: Int64, high: Int64), KafkaError> = await runBlocking { [client] in
            do throws(KafkaError) { return .success(try client.watermarks(partition, timeout: timeout)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private static func create(_ specs: [TopicSpec], client: RdKafkaClient, timeout: Duration) throws(KafkaError) -> [String] {
        var errorText = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { for topic in newTopics { rd_kafka_NewTopic_destroy(topic) } }
        for spec in specs {
            guard let topic = rd_kafka_NewTopic_new(spec.name, Int32(spec.partitions), -1, &errorText, errorText.count) else {
                throw KafkaError(code: .operation, message: "topic \(spec.name): \(text(errorText))")
            }
            for (key, value) in spec.configs { rd_kafka_NewTopic_set_config(topic, key, value) }
            newTopics.append(topic)
        }
        let options = rd_kafka_AdminOptions_new(client.handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        rd_kafka_AdminOptions_set_operation_timeout(options, Int32(timeout.milliseconds), &errorText, errorText.count)
        let event = try client.adminResult("create topics", wait: timeout + .seconds(5)) { resultQueue in
            newTopics.withUnsafeMutableBufferPointer { buffer in
                rd_kafka_CreateTopics(client.handle, buffer.baseAddress, buffer.count, options, resultQueue)
            }
        }
        defer { rd_kafka_event_destroy(event) }
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            throw KafkaError(code: .operation, message: "create topics: unexpected result")
        }
        var count = 0
        let topics = rd_kafka_CreateTopics_result_topics(result, &count)
        var created: [String] = []
        for index in 0..<count {
            guard let topic = topics?[index] else { continue }
            let name = String(cString: rd_kafka_topic_result_name(topic))
            let error = rd_kafka_topic_result_error(topic)
            if error == RD_KAFKA_RESP_ERR_NO_ERROR {
                created.append(name)
            } else if error != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
                throw KafkaError(code: .operation, "create topic \(name)", error: error)
            }
        }
        return created
    }

    private func runBlocking<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }
}

extension RdKafkaClient {
    /// Runs one admin request: `send` issues it with a result queue. Returns the result event
    /// once its request-level error is checked; the caller reads and destroys it.
    func adminResult(_ what: String, wait: Duration, _ send: (OpaquePointer?) -> Void) throws(KafkaError) -> OpaquePointer {
        let resultQueue = rd_kafka_queue_new(handle)
        defer { rd_kafka_queue_destroy(resultQueue) }
        send(resultQueue)
        guard let event = rd_kafka_queue_poll(resultQueue, Int32(wait.milliseconds)) else {
            throw KafkaError(code: .timedOut, message: "\(what): no answer from the broker")
        }
        let error = rd_kafka_event_error(event)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_event_destroy(event)
            throw KafkaError(code: .operation, what, error: error)
        }
        return event
    }

    /// Deletes a consumer group with its committed offsets. Apache Kafka refuses while the
    /// group has members (GROUP_NOT_EMPTY).
    func deleteGroup(_ groupId: String, wait: Duration = .seconds(10)) throws(KafkaError) {
        let group = rd_kafka_DeleteGroup_new(groupId)
        defer { rd_kafka_DeleteGroup_destroy(group) }
        var groups: [OpaquePointer?] = [group]
        let event = try adminResult("delete group \(groupId)", wait: wait) { resultQueue in
            groups.withUnsafeMutableBufferPointer { buffer in
                rd_kafka_DeleteGroups(handle, buffer.baseAddress, buffer.count, nil, resultQueue)
            }
        }
        defer { rd_kafka_event_destroy(event) }
        var count = 0
        guard let result = rd_kafka_event_DeleteGroups_result(event),
              let answers = rd_kafka_DeleteGroups_result_groups(result, &count), count > 0, let answer = answers[0]
        else { throw KafkaError(code: .operation, message: "delete group \(groupId): no result") }
        if let error = rd_kafka_group_result_error(answer) {
            throw KafkaError(code: .operation, message: "delete group \(groupId): \(String(cString: rd_kafka_error_string(error)))")
        }
    }
}
