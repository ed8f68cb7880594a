using System.Text;
using Google.Protobuf;

namespace Whetstone.Models.Tokenizers;

/// <summary>
/// The parts of a SentencePiece <c>tokenizer.model</c> (sentencepiece_model.proto's ModelProto) that BPE encoding
/// needs: pieces with scores and types, the trainer's model type, byte fallback and special ids, the normalizer's
/// whitespace options.
/// </summary>
internal sealed class SentencePieceModelFile
{
    public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    public List<(string Piece, float Score, PieceType Type)> Pieces { get; } = [];
    /// <summary>1 Unigram, 2 BPE, 3 word, 4 char (proto default: Unigram).</summary>
    public int ModelType { get; private set; } = 1;
    public bool ByteFallback { get; private set; }
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public string NormalizerName { get; private set; } = "";
    public bool HasCharsMap { get; private set; }
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    private static int Field(uint tag) => (int)(tag >> 3);

    /// <exception cref="InvalidProtocolBufferException">not a protobuf message</exception>
    public static SentencePieceModelFile Read(byte[] buffer)
    {
        var m = new SentencePieceModelFile();
        var input = new CodedInputStream(buffer);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 1 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited: m.Pieces.Add(ReadPiece(new CodedInputStream(input.ReadBytes().ToByteArray()))); break;
                case 2 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited: m.ReadTrainer(new CodedInputStream(input.ReadBytes().ToByteArray())); break;
                case 3 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited: m.ReadNormalizer(new CodedInputStream(input.ReadBytes().ToByteArray())); break;
                default: input.SkipLastField(); break;
            }
        }
        return m;
    }

    private static (string, float, PieceType) ReadPiece(CodedInputStream input)
    {
        string piece = "";
        float score = 0;
        var type = PieceType.Normal;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 1: piece = input.ReadString(); break;
                case 2: score = input.ReadFloat(); break;
                case 3: type = (PieceType)input.ReadEnum(); break;
                default: input.SkipLastField(); break;
            }
        }
        return (piece, score, type);
    }

    private void ReadTrainer(CodedInputStream input)
    {
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 3: ModelType = input.ReadEnum(); break;
                case 24: TreatWhitespaceAsSuffix = input.ReadBool(); break;
                case 35: ByteFallback = input.ReadBool(); break;
                case 40: UnkId = input.ReadInt32(); break;
                case 41: BosId = input.ReadInt32(); break;
                case 42: EosId = input.ReadInt32(); break;
                case 43: PadId = input.ReadInt32(); break;
                default: input.SkipLastField(); break;
            }
        }
    }

    private void ReadNormalizer(CodedInputStream input)
    {
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (Field(tag))
            {
                case 1: NormalizerName = input.ReadString(); break;
                case 2: HasCharsMap = input.ReadBytes().Length > 0; break;
                case 3: AddDummyPrefix = input.ReadBool(); break;
                case 4: RemoveExtraWhitespaces = input.ReadBool(); break;
                case 5: EscapeWhitespaces = input.ReadBool(); break;
                default: input.SkipLastField(); break;
            }
        }
    }
}

/// <summary>
/// SentencePiece's BPE (bpe_model.cc) over a tokenizer.model: the text's characters are merged pair by pair, always
/// the adjacent pair whose joined piece scores highest, the leftmost of equal scores first; what stays outside the
/// vocabulary becomes &lt;0xNN&gt; byte pieces (byte fallback) or one &lt;unk&gt; per run. Written here rather than
/// taken from Microsoft.ML.Tokenizers' LlamaTokenizer, which (2.0.1 and 3.0.0) breaks ties from the right and so
/// differs from sentencepiece on runs of a repeated character ("!!!!!!!!" → its pieces in another order).
/// </summary>
internal sealed class SentencePieceBpeEncoder : SegmentEncoder
{
    private readonly SentencePieceModelFile _model;
    private readonly Dictionary<string, int> _pieces = new(StringComparer.Ordinal);   // pieces that merges may form
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly string[] _userDefined;
    private readonly int[]? _byteIds;
    private readonly bool _legacy;

    public SentencePieceBpeEncoder(SentencePieceModelFile model, bool legacy)
    {
        _model = model;
        _legacy = legacy;
        var bytes = new int[256];
        int found = 0;
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            var (piece, _, type) = model.Pieces[id];
            if (type is SentencePieceModelFile.PieceType.Normal or SentencePieceModelFile.PieceType.UserDefined or SentencePieceModelFile.PieceType.Unused)
                _pieces.TryAdd(piece, id);
            else if (type == SentencePieceModelFile.PieceType.Byte && piece.Length == 6
                && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out byte b))
            { bytes[b] = id; found++; }
        }
        _byteIds = model.ByteFallback && found == 256 ? bytes : null;
        _lookup = _pieces.GetAlternateLookup<ReadOnlySpan<char>>();
        _userDefined = [.. model.Pieces.Where(p => p.Type == SentencePieceModelFile.PieceType.UserDefined).Select(p => p.Piece).OrderByDescending(p => p.Length)];
        // as in BpeSegmentEncoder: when no piece holds '▁' after another character, no merge crosses the place before
        // such a '▁', and the words cut there are encoded one by one (a shorter agenda, the same ids)
        _cutWords = model.EscapeWhitespaces && _pieces.ContainsKey("▁") && !_pieces.Keys.Any(HasMarkAfterOther);
    }

    private readonly bool _cutWords;

    private static bool HasMarkAfterOther(string token)
    {
        for (int i = 1; i < token.Length; i++)
            if (token[i] == '▁' && token[i - 1] != '▁') return true;
        return false;
    }

    public override void Encode(string segment, int start, List<int> ids)
    {
        // transformers' LlamaTokenizer, legacy (its default): each segment between added tokens is encoded on its own
        // and so gets the dummy "▁" prefix; otherwise only the segment that starts the text does
        var text = Normalize(segment, _model.AddDummyPrefix && (_legacy || start == 0));
        if (text.Length == 0) return;
        if (!_cutWords || text.Length <= 64) { EncodeNormalized(text, ids); return; }
        int from = 0;
        for (int i = 1; i < text.Length; i++)
            if (text[i] == '▁' && text[i - 1] != '▁') { EncodeNormalized(text[from..i], ids); from = i; }
        EncodeNormalized(text[from..], ids);
    }

    private string Normalize(string text, bool dummyPrefix)
    {
        if (_model.RemoveExtraWhitespaces)
        {
            var sb = new StringBuilder(text.Length);
            foreach (char c in text.Trim(' '))
                if (c != ' ' || sb.Length == 0 || sb[^1] != ' ') sb.Append(c);
            text = sb.ToString();
        }
        if (text.Length == 0) return text;
        if (dummyPrefix) text = " " + text;
        return _model.EscapeWhitespaces ? text.Replace(' ', '▁') : text;
    }

    private void EncodeNormalized(string text, List<int> ids)
    {
        // symbols: user-defined pieces whole, else one code point each; a doubly linked list over spans of the text
        var start = new List<int>(text.Length);
        var len = new List<int>(text.Length);
        for (int i = 0; i < text.Length;)
        {
            int l = 0;
            foreach (var u in _userDefined)
                if (text.AsSpan(i).StartsWith(u, StringComparison.Ordinal)) { l = u.Length; break; }
            if (l == 0) l = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            start.Add(i);
            len.Add(l);
            i += l;
        }
        int n = start.Count;
        var prev = new int[n];
        var next = new int[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
        var agenda = new PriorityQueue<(int Left, int Right, int Length), (float Score, int Left)>(Comparer<(float Score, int Left)>.Create(
            (a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left)));
        void Consider(int left, int right)
        {
            if (left < 0 || right < 0) return;
            int length = len[left] + len[right];
            if (_lookup.TryGetValue(text.AsSpan(start[left], length), out int id))
                agenda.Enqueue((left, right, length), (_model.Pieces[id].Score, start[left]));
        }
        for (int i = 0; i + 1 < n; i++) Consider(i, i + 1);
        while (agenda.TryDequeue(out var pair, out _))
        {
            var (left, right, length) = pair;
            if (len[left] == 0 || len[right] == 0 || next[left] != right || len[left] + len[right] != length) continue;   // stale
            len[left] = length;
            len[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            Consider(prev[left], left);
            Consider(left, next[left]);
        }
        bool lastUnk = false;
        for (int s = 0; s >= 0; s = next[s])
        {
            var span = text.AsSpan(start[s], len[s]);
            if (_lookup.TryGetValue(span, out int id)) { ids.Add(id); lastUnk = false; }
            else if (_byteIds is not null)
            {
                foreach (byte b in Encoding.UTF8.GetBytes(span.ToString())) ids.Add(_byteIds[b]);
                lastUnk = false;
            }
            else
            {
                if (!lastUnk) ids.Add(_model.UnkId);   // sentencepiece merges consecutive unknown pieces
                lastUnk = true;
            }
        }
    }
}
