/// Connection settings shared by producers, consumers and the admin client.
public struct KafkaConfiguration: Sendable {
    /// Comma-separated `host:port` bootstrap brokers. Default `127.0.0.1:19092` (the dev stack).
    public var brokers: String = "127.0.0.1:19092"
    /// Sent to the broker for logs and quotas. Default `tributary`.
    public var clientId: String = "tributary"
    /// How long a produced message may wait for acknowledgement before failing. Default 10 s.
    public var messageTimeout: Duration = .seconds(10)
    /// How long the producer waits to fill a batch. Default 2 ms.
    public var linger: Duration = .milliseconds(2)
    /// How long a consumer-group member may go without an assignment — after joining, or
    /// after its partitions were revoked — before it counts as stalled and rejoins. A few
    /// session timeouts (6 s): a healthy rebalance takes seconds. Default 30 s.
    public var groupStallTimeout: Duration = .seconds(30)
    /// Extra librdkafka properties, applied last (e.g. `security.protocol`).
    public var properties: [String: String] = [:]

    public init(brokers: String = "127.0.0.1:19092") {
        self.brokers = brokers
    }
}

/// A partition of a topic.
public struct TopicPartition: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// A message to produce. A nil key lets librdkafka spread messages over partitions.
public struct KafkaOutgoingMessage: Sendable {
    public var topic: String
    public var key: [UInt8]?
    public var value: [UInt8]

    public init(topic: String, key: [UInt8]?, value: [UInt8]) {
        self.topic = topic
        self.key = key
        self.value = value
    }

    public init(topic: String, key: String, value: [UInt8]) {
        self.init(topic: topic, key: Array(key.utf8), value: value)
    }
}

/// A consumed message.
public struct KafkaMessage: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    /// Broker or producer timestamp in Unix milliseconds, when known.
    public var timestamp: Int64?

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}
