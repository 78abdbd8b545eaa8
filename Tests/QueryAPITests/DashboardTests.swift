import Contracts
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
@testable import QueryAPI
import Storage
import Testing

/// The dashboard's files (`Resources/dashboard/`) load and become one self-contained page; the
/// page and the OpenAPI document are served from what was read at start-up.
@Suite struct DashboardTests {
    @Test func thePageLoadsWithItsStyleAndScriptInlined() throws {
        let page = try Dashboard.load()
        #expect(page == Dashboard.page)
        #expect(page.hasPrefix("<!doctype html>"))
        #expect(page.contains("<style>\n:root{"))
        #expect(page.contains("<script>\n\"use strict\";"))
        #expect(page.hasSuffix("</script>\n</body></html>"))
        // Self-contained: nothing left to fetch.
        #expect(!page.contains("dashboard.css") && !page.contains("dashboard.js") && !page.contains("<link"))
        for testID in ["token", "load", "status", "funnel-select"] {
            #expect(page.contains(#"data-testid="\#(testID)""#))
        }
    }

    @Test func inliningReplacesExactlyOneReference() throws {
        #expect(try Dashboard.inline("<x>", with: "y", in: "a<x>b") == "ayb")
        #expect(throws: Dashboard.MissingReference.self) { try Dashboard.inline("<x>", with: "y", in: "ab") }
        #expect(throws: Dashboard.MissingReference.self) { try Dashboard.inline("<x>", with: "y", in: "<x><x>") }
    }

    @Test func servesThePageAndTheDocument() async throws {
        // Neither route touches Postgres: the client is never run.
        let postgres = PostgresClient(configuration: .init(host: "127.0.0.1", username: "unused", password: nil, database: nil, tls: .disable))
        let logger = Logger(label: "dashboard-test")
        let router = Router()
        QueryAPI(configuration: QueryAPIConfiguration(), postgres: postgres, directory: SiteDirectory(client: postgres, logger: logger), logger: logger)
            .addRoutes(to: router)
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                #expect(response.headers[.cacheControl] == "no-cache")
                #expect(String(buffer: response.body) == Dashboard.page)
            }
            try await client.execute(uri: "/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                #expect((try? JSONValue.parse(response.body.readableBytesView)) == OpenAPI.json)
            }
        }
    }
}
