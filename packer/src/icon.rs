//! The toolkit's own shortcut icon, used when `--icon` gives none: Microsoft's validator warns
//! about a distribution without `shortcut.icon`, and wants it under /usr/lib/wsl or
//! /usr/share/wsl, root-owned 0644, at most 1 MiB (validate-modern.py, `read_tar`).
//! A 32x32 32-bit ICO (one BMP image), drawn here so no binary file is checked in: a
//! NixOS-blue disc on a transparent background.

/// Where the default icon goes inside the tree.
pub const DEFAULT_ICON_PATH: &str = "/usr/share/wsl/nixos-wsl.ico";

const SIZE: u32 = 32;

pub fn default_icon() -> Vec<u8> {
    let pixels = SIZE * SIZE * 4;
    let mask = SIZE * SIZE.div_ceil(32) * 4; // AND mask rows padded to 32 bits
    let image = 40 + pixels + mask;
    let mut out = Vec::with_capacity(6 + 16 + image as usize);
    // ICONDIR: reserved, type 1 (icon), one image.
    out.extend_from_slice(&[0, 0, 1, 0, 1, 0]);
    // ICONDIRENTRY: width, height, colours, reserved, planes, bits, size, offset.
    out.extend_from_slice(&[SIZE as u8, SIZE as u8, 0, 0, 1, 0, 32, 0]);
    out.extend_from_slice(&image.to_le_bytes());
    out.extend_from_slice(&22u32.to_le_bytes());
    // BITMAPINFOHEADER; the height counts the colour rows and the mask rows.
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&SIZE.to_le_bytes());
    out.extend_from_slice(&(2 * SIZE).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // BI_RGB
    out.extend_from_slice(&(pixels + mask).to_le_bytes());
    out.extend_from_slice(&[0; 16]); // resolution and palette counts
    let centre = (SIZE as i32 - 1) * (SIZE as i32 - 1) / 4;
    for y in 0..SIZE as i32 {
        for x in 0..SIZE as i32 {
            let (dx, dy) = (2 * x - (SIZE as i32 - 1), 2 * y - (SIZE as i32 - 1));
            let inside = dx * dx + dy * dy <= 4 * centre;
            // BGRA: #7EBAE4, NixOS's light blue.
            out.extend_from_slice(if inside {
                &[0xE4, 0xBA, 0x7E, 0xFF]
            } else {
                &[0, 0, 0, 0]
            });
        }
    }
    out.resize(out.len() + mask as usize, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_icon_is_one_32x32_image_whose_sizes_add_up() {
        let icon = default_icon();
        assert_eq!(&icon[..6], &[0, 0, 1, 0, 1, 0]);
        let size = u32::from_le_bytes([icon[14], icon[15], icon[16], icon[17]]) as usize;
        let offset = u32::from_le_bytes([icon[18], icon[19], icon[20], icon[21]]) as usize;
        assert_eq!(offset + size, icon.len());
        assert!(icon.len() < 1 << 20);
        assert_eq!(&icon[offset..offset + 4], &40u32.to_le_bytes());
    }
}
