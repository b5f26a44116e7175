//! The vocabulary of a frame header: opcodes and the size of the largest header.

/// A frame's opcode (RFC 6455 5.2); the values left out are reserved and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum OpCode {
    /// Continues a fragmented text or binary message.
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

impl OpCode {
    /// The opcode of a header's low nibble; `None` for a reserved one.
    pub(crate) fn from_u8(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented.
    pub(crate) fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }

    /// Text and binary: what counts as traffic for the idle timeout.
    pub(crate) fn is_data(self) -> bool {
        matches!(self, OpCode::Text | OpCode::Binary)
    }
}

/// The most bytes a frame header takes (2 + 8 length + 4 mask).
pub(crate) const MAX_HEADER: usize = 14;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_round_trips_and_reserved_ones_are_refused() {
        for op in [
            OpCode::Continuation,
            OpCode::Text,
            OpCode::Binary,
            OpCode::Close,
            OpCode::Ping,
            OpCode::Pong,
        ] {
            assert_eq!(OpCode::from_u8(op as u8), Some(op));
            assert_eq!(op.is_control(), op as u8 >= 0x8);
        }
        for reserved in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(OpCode::from_u8(reserved), None);
        }
    }
}
