// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "tributary",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tributary", targets: ["Tributary"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    ],
    targets: [
        // Shared
        .target(name: "Contracts", path: "Shared/Contracts", swiftSettings: swiftSettings),
        .systemLibrary(
            name: "CRdKafka", path: "Shared/CRdKafka", pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(
            name: "Kafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/Kafka", swiftSettings: swiftSettings
        ),
        .target(
            name: "HTTPAPI",
            dependencies: [
                "Contracts",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Shared/HTTPAPI", swiftSettings: swiftSettings
        ),
        .target(
            name: "Storage",
            dependencies: [
                "Contracts",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Shared/Storage", swiftSettings: swiftSettings
        ),
        .target(
            name: "StreamRuntime",
            dependencies: [
                "Kafka", "Storage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/StreamRuntime", swiftSettings: swiftSettings
        ),
        // Services
        .target(
            name: "Collector",
            dependencies: [
                "Contracts", "HTTPAPI", "Kafka", "Storage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Services/Collector",
            resources: [.copy("Resources/t.js"), .copy("Resources/openapi.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Sessionizer",
            dependencies: [
                "Contracts", "Kafka", "Storage", "StreamRuntime",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Services/Sessionizer", swiftSettings: swiftSettings
        ),
        .target(
            name: "Aggregator",
            dependencies: [
                "Contracts", "Kafka", "Storage", "StreamRuntime",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/Aggregator", swiftSettings: swiftSettings
        ),
        .target(
            name: "Forwarder",
            dependencies: [
                "Contracts", "Storage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/Forwarder", swiftSettings: swiftSettings
        ),
        .target(
            name: "QueryAPI",
            dependencies: [
                "Contracts", "HTTPAPI", "Storage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Services/QueryAPI",
            resources: [.copy("Resources/openapi.json"), .copy("Resources/dashboard")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Tributary",
            dependencies: [
                "Contracts", "HTTPAPI", "Kafka", "Storage", "StreamRuntime", "Collector", "Sessionizer", "Aggregator", "QueryAPI", "Forwarder",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Services/Tributary", swiftSettings: swiftSettings
        ),
        // Tests
        // The checks both services' OpenAPI documents pass, shared by their test targets.
        .target(name: "OpenAPIChecks", dependencies: ["Contracts"], path: "Tests/OpenAPIChecks", swiftSettings: swiftSettings),
        .testTarget(name: "ContractsTests", dependencies: ["Contracts"], path: "Tests/ContractsTests"),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka"], path: "Tests/KafkaTests"),
        .testTarget(name: "StorageTests", dependencies: ["Storage"], path: "Tests/StorageTests"),
        .testTarget(
            name: "StreamRuntimeTests",
            dependencies: [
                "StreamRuntime", "Kafka", "Storage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/StreamRuntimeTests"
        ),
        .testTarget(
            name: "CollectorTests",
            dependencies: [
                "Collector", "Contracts", "HTTPAPI", "OpenAPIChecks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/CollectorTests",
            // Vendors' documented payloads, read by path (#filePath) byte for byte.
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "TributaryTests",
            dependencies: [
                "Tributary",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TributaryTests"
        ),
        .testTarget(name: "SessionizerTests", dependencies: ["Sessionizer", "Kafka"], path: "Tests/SessionizerTests"),
        .testTarget(name: "AggregatorTests", dependencies: ["Aggregator", "Kafka"], path: "Tests/AggregatorTests"),
        .testTarget(name: "ForwarderTests", dependencies: ["Forwarder", "Storage", "Contracts"], path: "Tests/ForwarderTests"),
        .testTarget(
            name: "QueryAPITests",
            dependencies: [
                "QueryAPI", "Contracts", "HTTPAPI", "Storage", "OpenAPIChecks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/QueryAPITests"
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Contracts", "Kafka", "Storage", "StreamRuntime", "Collector", "Sessionizer", "Aggregator", "QueryAPI", "Forwarder",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Tests/IntegrationTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
