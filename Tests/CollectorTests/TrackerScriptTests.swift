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
}
