import Contracts
import Crypto
import Foundation

/// SHA-256 of a text's UTF-8 bytes, lower-case hex: API keys at rest, and the identifiers
/// that leave hashed (emails and phones for ad platforms, in each platform's normalisation).
public func sha256Hex(_ text: String) -> String {
    hexString(SHA256.hash(data: Data(text.utf8)))
}
