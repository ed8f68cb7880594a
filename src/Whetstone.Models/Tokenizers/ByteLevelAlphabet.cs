using System.Text;

namespace Whetstone.Models.Tokenizers;

/// <summary>
/// GPT-2's byte-level alphabet: every byte 0..255 stands for one printable character, so a byte-level BPE vocabulary
/// holds strings of those characters. Printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the others,
/// in byte order, for U+0100 onwards (space is 'Ġ', newline 'Ċ').
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>byte → its character.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByteMap = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            map[b] = b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ' ? (char)b : (char)next++;
        return map;
    }

    /// <summary>The UTF-8 bytes of <paramref name="text"/>, each written as its alphabet character.</summary>
    public static string Map(string text)
    {
        int n = Encoding.UTF8.GetByteCount(text);
        Span<byte> bytes = n <= 512 ? stackalloc byte[n] : new byte[n];
        Encoding.UTF8.GetBytes(text, bytes);
        return string.Create(n, bytes.ToArray(), (dst, src) => { for (int i = 0; i < src.Length; i++) dst[i] = ByteToChar[src[i]]; });
    }

    /// <summary>The bytes a vocabulary entry stands for, or null when it holds a character outside the alphabet.</summary>
    public static byte[]? Unmap(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!CharToByteMap.TryGetValue(token[i], out byte b)) return null;
            bytes[i] = b;
        }
        return bytes;
    }
}
