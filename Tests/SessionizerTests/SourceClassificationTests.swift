import Contracts
import Foundation
@testable import Sessionizer
import Testing

/// The expected acquisition context of a session's first event.
struct ContextCase: Sendable, CustomTestStringConvertible {
    var url: String?
    var referrer: String?
    var source: String
    var medium: String
    var campaign: String
    var channel: String
    var referrerDomain = "(none)"
    var clickId: String?
    var term: String?
    var content: String?

    var testDescription: String { "\(url ?? "nil") ← \(referrer ?? "nil")" }
}

@Suite struct SourceClassificationTests {
    static let cases: [ContextCase] = [
        // UTM parameters, captured as sent (source and medium lower-cased, campaign kept).
        ContextCase(url: "https://shop.example/spring?utm_source=Newsletter&utm_medium=Email&utm_campaign=Spring%20Sale&utm_term=mugs&utm_content=hero",
                    source: "newsletter", medium: "email", campaign: "Spring Sale", channel: "Email", term: "mugs", content: "hero"),
        ContextCase(url: "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=brand",
                    source: "google", medium: "cpc", campaign: "brand", channel: "Paid Search"),
        ContextCase(url: "https://shop.example/?utm_source=facebook&utm_medium=cpc&utm_campaign=retarget",
                    source: "facebook", medium: "cpc", campaign: "retarget", channel: "Paid Social"),
        ContextCase(url: "https://shop.example/?utm_source=partner", source: "partner", medium: "(not set)", campaign: "(not set)", channel: "Unassigned"),
        ContextCase(url: "https://shop.example/?UTM_SOURCE=Partner&utm_medium=affiliate&utm_campaign=black+friday",
                    source: "partner", medium: "affiliate", campaign: "black friday", channel: "Affiliates"),
        ContextCase(url: "https://shop.example/?utm_source=&utm_medium=cpc", source: "(direct)", medium: "(none)", campaign: "(none)", channel: "Direct"),
        // UTM wins over the referrer, which is still recorded.
        ContextCase(url: "https://shop.example/?utm_source=newsletter&utm_medium=email", referrer: "https://www.google.com/",
                    source: "newsletter", medium: "email", campaign: "(not set)", channel: "Email", referrerDomain: "www.google.com"),
        // Click ids without UTM.
        ContextCase(url: "https://shop.example/p?gclid=abc123", source: "google", medium: "cpc", campaign: "(not set)", channel: "Paid Search", clickId: "abc123"),
        ContextCase(url: "https://shop.example/p?gclid=abc&utm_campaign=summer", source: "google", medium: "cpc", campaign: "summer", channel: "Paid Search", clickId: "abc"),
        ContextCase(url: "https://shop.example/p?fbclid=IwAR0", referrer: "https://l.facebook.com/",
                    source: "facebook", medium: "paid_social", campaign: "(not set)", channel: "Paid Social", referrerDomain: "l.facebook.com", clickId: "IwAR0"),
        ContextCase(url: "https://shop.example/p?msclkid=m1", source: "bing", medium: "cpc", campaign: "(not set)", channel: "Paid Search", clickId: "m1"),
        ContextCase(url: "https://shop.example/p?ttclid=t1", source: "tiktok", medium: "paid_social", campaign: "(not set)", channel: "Paid Social", clickId: "t1"),
        ContextCase(url: "https://shop.example/p?fbclid=f&gclid=g", source: "google", medium: "cpc", campaign: "(not set)", channel: "Paid Search", clickId: "g"),
        // UTM plus a click id: UTM names the source, the click id is kept.
        ContextCase(url: "https://shop.example/p?utm_source=google&utm_medium=cpc&gclid=g1", source: "google", medium: "cpc", campaign: "(not set)", channel: "Paid Search", clickId: "g1"),
        // Search engines: organic.
        ContextCase(url: "https://shop.example/", referrer: "https://www.google.com/", source: "google", medium: "organic", campaign: "(none)", channel: "Organic Search", referrerDomain: "www.google.com"),
        ContextCase(url: "https://shop.example/", referrer: "https://www.google.co.uk/search?q=mugs", source: "google", medium: "organic", campaign: "(none)", channel: "Organic Search", referrerDomain: "www.google.co.uk"),
        ContextCase(url: "https://shop.example/", referrer: "https://google.de/", source: "google", medium: "organic", campaign: "(none)", channel: "Organic Search", referrerDomain: "google.de"),
        ContextCase(url: "https://shop.example/", referrer: "https://www.bing.com/search?q=x", source: "bing", medium: "organic", campaign: "(none)", channel: "Organic Search", referrerDomain: "www.bing.com"),
        ContextCase(url: "https://shop.example/", referrer: "https://duckduckgo.com/", source: "duckduckgo", medium: "organic", campaign: "(none)", channel: "Organic Search", referrerDomain: "duckduckgo.com"),
        ContextCase(url: "https://shop.example/", referrer: "https://search.yahoo.co.jp/", source: "yahoo", medium: "organic", campaign: "(none)", channel: "Organic Search", referrerDomain: "search.yahoo.co.jp"),
        ContextCase(url: "https://shop.example/", referrer: "https://search.brave.com/search", source: "brave", medium: "organic", campaign: "(none)", channel: "Organic Search", referrerDomain: "search.brave.com"),
        // Social networks.
        ContextCase(url: "https://shop.example/", referrer: "https://t.co/abc", source: "twitter", medium: "social", campaign: "(none)", channel: "Organic Social", referrerDomain: "t.co"),
        ContextCase(url: "https://shop.example/", referrer: "https://m.facebook.com/", source: "facebook", medium: "social", campaign: "(none)", channel: "Organic Social", referrerDomain: "m.facebook.com"),
        ContextCase(url: "https://shop.example/", referrer: "https://www.reddit.com/r/mugs", source: "reddit", medium: "social", campaign: "(none)", channel: "Organic Social", referrerDomain: "www.reddit.com"),
        ContextCase(url: "https://shop.example/", referrer: "https://de.pinterest.com/pin/1", source: "pinterest", medium: "social", campaign: "(none)", channel: "Organic Social", referrerDomain: "de.pinterest.com"),
        ContextCase(url: "https://shop.example/", referrer: "https://x.com/someone", source: "twitter", medium: "social", campaign: "(none)", channel: "Organic Social", referrerDomain: "x.com"),
        // Webmail: email, even though mail.google.com is under google.
        ContextCase(url: "https://shop.example/", referrer: "https://mail.google.com/mail/u/0/", source: "gmail", medium: "email", campaign: "(none)", channel: "Email", referrerDomain: "mail.google.com"),
        ContextCase(url: "https://shop.example/", referrer: "https://outlook.live.com/mail/", source: "outlook", medium: "email", campaign: "(none)", channel: "Email", referrerDomain: "outlook.live.com"),
        ContextCase(url: "https://shop.example/", referrer: "https://mail.yahoo.com/", source: "yahoo mail", medium: "email", campaign: "(none)", channel: "Email", referrerDomain: "mail.yahoo.com"),
        // Any other site: a referral from its domain (without www.).
        // Android apps refer with their package name; the Gmail app is email, not Google search.
        ContextCase(url: "https://shop.example/", referrer: "android-app://com.google.android.gm/", source: "gmail", medium: "email", campaign: "(none)", channel: "Email", referrerDomain: "com.google.android.gm"),
        ContextCase(url: "https://shop.example/", referrer: "android-app://com.google.android.googlequicksearchbox/", source: "google", medium: "organic", campaign: "(none)", channel: "Organic Search", referrerDomain: "com.google.android.googlequicksearchbox"),
        ContextCase(url: "https://shop.example/", referrer: "android-app://com.google.android.youtube", source: "youtube", medium: "social", campaign: "(none)", channel: "Organic Social", referrerDomain: "com.google.android.youtube"),
        ContextCase(url: "https://shop.example/", referrer: "android-app://com.facebook.katana/", source: "facebook", medium: "social", campaign: "(none)", channel: "Organic Social", referrerDomain: "com.facebook.katana"),
        // A referrer without a scheme still names its host.
        ContextCase(url: "https://shop.example/", referrer: "www.bing.com/search?q=mugs", source: "bing", medium: "organic", campaign: "(none)", channel: "Organic Search", referrerDomain: "www.bing.com"),
        ContextCase(url: "https://shop.example/", referrer: "blog.example.org", source: "blog.example.org", medium: "referral", campaign: "(none)", channel: "Referral", referrerDomain: "blog.example.org"),
        ContextCase(url: "https://shop.example/", referrer: "https://www.someblog.com/post/1", source: "someblog.com", medium: "referral", campaign: "(none)", channel: "Referral", referrerDomain: "www.someblog.com"),
        ContextCase(url: "https://shop.example/", referrer: "https://user@Blog.Example.org:8443/p?q=1", source: "blog.example.org", medium: "referral", campaign: "(none)", channel: "Referral", referrerDomain: "blog.example.org"),
        ContextCase(url: "https://shop.example/", referrer: "https://notgoogle.com/", source: "notgoogle.com", medium: "referral", campaign: "(none)", channel: "Referral", referrerDomain: "notgoogle.com"),
        ContextCase(url: "https://shop.example/", referrer: "https://box.com/", source: "box.com", medium: "referral", campaign: "(none)", channel: "Referral", referrerDomain: "box.com"),
        // No referrer: direct.
        ContextCase(url: "https://shop.example/", source: "(direct)", medium: "(none)", campaign: "(none)", channel: "Direct"),
        ContextCase(url: "https://shop.example/", referrer: "", source: "(direct)", medium: "(none)", campaign: "(none)", channel: "Direct"),
        ContextCase(url: nil, source: "(direct)", medium: "(none)", campaign: "(none)", channel: "Direct"),
        // Self-referrals from the site's own host are not a source.
        ContextCase(url: "https://shop.example/product", referrer: "https://shop.example/cart", source: "(direct)", medium: "(none)", campaign: "(none)", channel: "Direct"),
        ContextCase(url: "https://www.shop.example/product", referrer: "https://shop.example/", source: "(direct)", medium: "(none)", campaign: "(none)", channel: "Direct"),
        ContextCase(url: "https://shop.example/product", referrer: "https://WWW.Shop.Example:443/", source: "(direct)", medium: "(none)", campaign: "(none)", channel: "Direct"),
        ContextCase(url: "https://shop.example/?utm_source=newsletter&utm_medium=email", referrer: "https://shop.example/cart",
                    source: "newsletter", medium: "email", campaign: "(not set)", channel: "Email"),
    ]

    @Test(arguments: cases)
    func firstEventSetsTheSessionContext(expected: ContextCase) {
        let event = SessionFixture.event(1, at: 0, url: expected.url, referrer: expected.referrer)
        let result = Sessionization.process(event, state: nil, rules: SessionRules())
        let context = result.enriched.context
        #expect(context.source == expected.source)
        #expect(context.medium == expected.medium)
        #expect(context.campaign == expected.campaign)
        #expect(context.channel == expected.channel)
        #expect(context.referrerDomain == expected.referrerDomain)
        #expect(context.referrer == (expected.referrerDomain == "(none)" ? nil : expected.referrer))
        #expect(context.clickId == expected.clickId)
        #expect(context.term == expected.term)
        #expect(context.content == expected.content)
        #expect(result.state.latest?.context == context)
    }

    @Test(arguments: [
        ("https://shop.example/products/mug?utm_source=x#reviews", "/products/mug"),
        ("https://shop.example", "/"),
        ("https://shop.example?utm_source=x", "/"),
        ("https://shop.example/#top", "/"),
        ("https://shop.example:8443/a/b/", "/a/b/"),
        ("/relative/path?x=1", "/relative/path"),
        ("", "(none)"),
    ])
    func landingPageIsTheFirstPagesPath(url: String, landingPage: String) {
        let enriched = Sessionization.process(SessionFixture.event(1, at: 0, url: url), state: nil, rules: SessionRules()).enriched
        #expect(enriched.context.landingPage == landingPage)
    }

    @Test func landingPageOfAnEventWithoutURL() {
        let enriched = Sessionization.process(SessionFixture.event(1, at: 0, url: nil), state: nil, rules: SessionRules()).enriched
        #expect(enriched.context.landingPage == "(none)")
    }

    @Test(arguments: [
        ("(direct)", "(none)", "Direct"),
        ("google", "organic", "Organic Search"),
        ("anything", "organic", "Organic Search"),
        ("google", "cpc", "Paid Search"),
        ("google", "CPC", "Paid Search"),
        ("bing", "ppc", "Paid Search"),
        ("yahoo", "paidsearch", "Paid Search"),
        ("duckduckgo", "paid_search", "Paid Search"),
        ("facebook", "cpc", "Paid Social"),
        ("tiktok", "cpc", "Paid Social"),
        ("someadnetwork", "cpc", "Paid Other"),
        ("facebook", "paid_social", "Paid Social"),
        ("anything", "paidsocial", "Paid Social"),
        ("twitter", "social", "Organic Social"),
        ("linkedin", "social-media", "Organic Social"),
        ("instagram", "organic_social", "Organic Social"),
        ("newsletter", "email", "Email"),
        ("crm", "Newsletter", "Email"),
        ("crm", "e-mail", "Email"),
        ("awin", "affiliate", "Affiliates"),
        ("gdn", "display", "Display"),
        ("dv360", "cpm", "Display"),
        ("outbrain", "paid", "Paid Other"),
        ("example.org", "referral", "Referral"),
        ("instagram", "referral", "Organic Social"),
        ("duckduckgo", "referral", "Organic Search"),
        ("pinterest", "unknown-medium", "Organic Social"),
        ("partner", "(not set)", "Unassigned"),
        ("partner", "(none)", "Unassigned"),
        ("(unattributed)", "(none)", "Unassigned"),
        ("google", "(none)", "Unassigned"),
    ])
    func channelGrouping(source: String, medium: String, channel: String) {
        #expect(SourceClassification.channel(source: source, medium: medium) == channel)
    }

    @Test(arguments: [
        ("a%20b", "a b"), ("a+b", "a b"), ("%E2%82%AC5", "€5"), ("100%", "100%"), ("%G1", "%G1"), ("%4", "%4"), ("plain", "plain"),
    ])
    func queryComponentsArePercentDecoded(raw: String, decoded: String) {
        #expect(FormEncoding.percentDecode(Substring(raw)) == decoded)
    }

    @Test func firstOccurrenceOfAQueryParameterWins() throws {
        let page = try #require(PageURL("https://shop.example/?utm_source=first&utm_source=second&empty=&flag"))
        #expect(page.query["utm_source"] == "first")
        #expect(page.query["empty"] == nil)
        #expect(page.query["flag"] == nil)
        #expect(page.host == "shop.example")
    }
}

