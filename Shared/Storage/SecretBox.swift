import Crypto
import Foundation

/// Seals the secrets Tributary must use again later (payment webhook signing secrets, ad
/// platform credentials) for storage at rest: AES-256-GCM with a key derived (HKDF-SHA256)
/// from `TRIBUTARY_SECRET_KEY`. Each sealed value is bound to what it belongs to (the
/// `context`, e.g. `stripe/shop-1`) as associated data, so a sealed value copied onto another
/// site's row does not open. Unlike keys we issue (stored as hashes), these are secrets
/// others issue and we must present or verify with, so they are encrypted, not hashed.
public struct SecretBox: Sendable {
    /// Shortest accepted `TRIBUTARY_SECRET_KEY`, in characters (`openssl rand -base64 32`
    /// prints 44): short keys are refused rather than stretched.
    public static let minimumKeyLength = 32
    public static let environmentVariable = "TRIBUTARY_SECRET_KEY"

    private let key: SymmetricKey

    /// Refuses a key shorter than `minimumKeyLength`.
    public init(secretKey: String) throws(StorageError) {
        guard secretKey.count >= Self.minimumKeyLength else {
            throw StorageError(code: .configuration,
                               message: "\(Self.environmentVariable) must be at least \(Self.minimumKeyLength) characters (e.g. `openssl rand -base64 32`)")
        }
        key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: Data(secretKey.utf8)),
                                     info: Data("tributary secret box v1".utf8), outputByteCount: 32)
    }

    /// The box of `TRIBUTARY_SECRET_KEY`; nil when it is not set, an error when it is too short.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(StorageError) -> SecretBox? {
        guard let value = environment[environmentVariable], !value.isEmpty else { return nil }
        return try SecretBox(secretKey: value)
    }

    /// Nonce, ciphertext and tag in one byte string.
    public func seal(_ secret: String, context: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(Data(secret.utf8), using: key, authenticating: Data(context.utf8))
        guard let combined = box.combined else { throw StorageError(code: .configuration, message: "AES-GCM gave no combined form") }
        return Array(combined)
    }

    /// The secret sealed under this key and context; throws when either differs (or the bytes were altered).
    public func open(_ sealed: [UInt8], context: String) throws -> String {
        let box = try AES.GCM.SealedBox(combined: Data(sealed))
        let plain = try AES.GCM.open(box, using: key, authenticating: Data(context.utf8))
        guard let text = String(data: plain, encoding: .utf8) else {
            throw StorageError(code: .invalid, message: "a sealed secret is not UTF-8 text")
        }
        return text
    }
}
