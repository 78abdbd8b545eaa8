import Hummingbird
import HummingbirdTesting
import Testing

@testable import Collector

@Suite struct TrackerScriptTests {
    @Test func servesTheScriptCacheablyWithAnETag() async throws {
        let router = Router()
        TrackerScript.addRoutes(to: router)
        try await Application(router: router).test(.router) { client in
            let etag = try await client.execute(uri: "/t.js", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("application/javascript") == true)
                #expect(response.headers[.cacheControl]?.contains("max-age") == true)
                let body = String(buffer: response.body)
                #expect(body == TrackerScript.body)
                for api in ["track", "setVisitor", "identify", "sendBeacon", "Idempotency-Key", "localStorage", "pushState"] {
                    #expect(body.contains(api), "the tracker uses \(api)")
                }
                return response.headers[.eTag]
            }
            let tag = try #require(etag)
            try await client.execute(uri: "/t.js", method: .get, headers: [.ifNoneMatch: tag]) { response in
                #expect(response.status == .notModified)
            }
        }
    }

    /// `Resources/t.js` is in the bundle, and what is served is it without indentation, blank
    /// lines and whole-line comments.
    @Test func theResourceLoadsAndIsServedCompacted() throws {
        let source = try TrackerScript.source()
        #expect(source.hasPrefix("/* Tributary tracker"))
        #expect(TrackerScript.body == TrackerScript.compact(source))
        #expect(TrackerScript.body.utf8.count < source.utf8.count)
        let lines = TrackerScript.body.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(!lines.isEmpty && lines.allSatisfy { !$0.isEmpty && !$0.hasPrefix(" ") && !$0.hasPrefix("//") })
        #expect(TrackerScript.body.hasSuffix("})(window, document, navigator);\n"))
    }
}
