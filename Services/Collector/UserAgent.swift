import Contracts

/// Reduces a User-Agent header to browser, OS and device class plus a bot flag. The header
/// itself is not kept: this is all of it that reaches storage.
enum UserAgent {
    static let botMarkers = [
        "bot", "crawler", "spider", "slurp", "headless", "lighthouse", "curl/", "wget/", "python-requests",
        "python-urllib", "go-http-client", "java/", "okhttp", "facebookexternalhit", "bingpreview", "preview",
        "phantomjs", "selenium", "puppeteer", "playwright", "httpclient", "scrapy", "monitor", "pingdom",
    ]

    static func classify(_ header: String?) -> ClientInfo? {
        guard let header, !header.isEmpty else { return nil }
        let agent = header.lowercased()
        let isBot = botMarkers.contains { agent.contains($0) }
        let browser: String? =
            agent.contains("edg/") || agent.contains("edga/") || agent.contains("edgios/") ? "Edge"
            : agent.contains("opr/") || agent.contains("opera") ? "Opera"
            : agent.contains("samsungbrowser/") ? "Samsung Internet"
            : agent.contains("firefox/") || agent.contains("fxios/") ? "Firefox"
            : agent.contains("chrome/") || agent.contains("crios/") || agent.contains("chromium/") ? "Chrome"
            : agent.contains("safari/") && agent.contains("version/") ? "Safari"
            : nil
        let os: String? =
            agent.contains("windows") ? "Windows"
            : agent.contains("iphone") || agent.contains("ipad") || agent.contains("ipod") ? "iOS"
            : agent.contains("android") ? "Android"
            : agent.contains("cros") ? "ChromeOS"
            : agent.contains("mac os x") || agent.contains("macintosh") ? "macOS"
            : agent.contains("linux") ? "Linux"
            : nil
        let device: String =
            isBot ? "bot"
            : agent.contains("ipad") || agent.contains("tablet") || (agent.contains("android") && !agent.contains("mobile")) ? "tablet"
            : agent.contains("mobi") || agent.contains("iphone") || agent.contains("android") ? "mobile"
            : "desktop"
        return ClientInfo(browser: browser, os: os, device: device, isBot: isBot)
    }
}
