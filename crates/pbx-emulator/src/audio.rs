//! The bytes served as a recording: silent MPEG-1 Layer III frames, so players and content sniffers accept them.

/// MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no CRC, no padding, mono.
const FRAME_HEADER: [u8; 4] = [0xFF, 0xFB, 0x90, 0xC4];
/// `144 * 128000 / 44100`, rounded down: the length of one such frame.
const FRAME_BYTES: usize = 417;
/// 44 100 / 1 152 samples per frame.
const FRAMES_PER_SECOND: usize = 38;
/// Recordings are served short whatever the call's length; their content is never checked.
const LONGEST_SECONDS: usize = 3;

/// About `seconds` of silence (at most a few seconds); never empty.
pub(crate) fn silent_mp3(seconds: u32) -> Vec<u8> {
    let seconds = usize::try_from(seconds).unwrap_or(LONGEST_SECONDS).clamp(1, LONGEST_SECONDS);
    let frames = seconds * FRAMES_PER_SECOND;
    let mut bytes = Vec::with_capacity(frames * FRAME_BYTES);
    for _ in 0..frames {
        bytes.extend_from_slice(&FRAME_HEADER);
        // Zero side information and main data decode as silence.
        bytes.resize(bytes.len() + FRAME_BYTES - FRAME_HEADER.len(), 0);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recording_is_whole_mp3_frames_starting_with_a_frame_sync() {
        let bytes = silent_mp3(600);
        assert_eq!(&bytes[..2], &[0xFF, 0xFB]);
        assert_eq!(bytes.len() % FRAME_BYTES, 0);
        assert_eq!(bytes.len(), LONGEST_SECONDS * FRAMES_PER_SECOND * FRAME_BYTES);
    }
}
