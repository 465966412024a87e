require "securerandom"

# Time-ordered UUIDs (version 7), as Liftoff gives new rows: 48 bits of Unix milliseconds, then random.
module Uuid7
  def self.generate
    bytes = [(Time.now.to_r * 1000).to_i].pack("Q>")[2, 6] + SecureRandom.random_bytes(10)
    bytes.setbyte(6, (bytes.getbyte(6) & 0x0f) | 0x70)
    bytes.setbyte(8, (bytes.getbyte(8) & 0x3f) | 0x80)
    bytes.unpack1("H*").sub(/\A(.{8})(.{4})(.{4})(.{4})(.{12})\z/, '\1-\2-\3-\4-\5')
  end
end
