import CRdKafka

/// An error from Kafka or from librdkafka. Codes can grow without breaking callers.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// The client could not be created from its configuration.
        public static let configuration = Code(name: "configuration")
        /// A message could not be enqueued or was not acknowledged by the broker.
        public static let delivery = Code(name: "delivery")
        /// The delivery timed out: the broker is unreachable or too slow.
        public static let timedOut = Code(name: "timed_out")
        /// A consumer, admin or metadata operation failed.
        public static let operation = Code(name: "operation")
        /// Every broker is down: refused at once, without waiting for the message timeout.
        public static let unavailable = Code(name: "unavailable")
        /// The client was already shut down.
        public static let closed = Code(name: "closed")
    }

    public var code: Code
    public var message: String
    /// librdkafka's numeric error code, when there is one.
    public var rdkafkaCode: Int32?

    public init(code: Code, message: String, rdkafkaCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.rdkafkaCode = rdkafkaCode
    }

    init(code: Code, _ context: String, error: rd_kafka_resp_err_t) {
        let text = String(cString: rd_kafka_err2str(error))
        self.init(code: code, message: "\(context): \(text)", rdkafkaCode: error.rawValue)
    }

    public var description: String { "KafkaError(\(code)): \(message)" }
}
