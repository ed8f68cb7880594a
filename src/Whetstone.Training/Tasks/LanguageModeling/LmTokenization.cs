using Whetstone.Models.Tokenizers;
using Whetstone.Models.Tokenizers.ChatTemplates;
using Whetstone.Training.Data;

namespace Whetstone.Training.Tasks;

/// <summary>A decoder checkpoint's tokenizer as language-model data reads it: no special tokens added, special ones in the text parsed.</summary>
internal sealed class DecoderLmTokenizer(DecoderTokenizer tokenizer) : ILmTokenizer
{
    public DecoderTokenizer Tokenizer { get; } = tokenizer;
    public IReadOnlyList<int> Encode(string text) => Tokenizer.Encode(text, addSpecialTokens: false, parseSpecialTokens: true);
    public int? BosId => Tokenizer.BosId;
    public int? EosId => Tokenizer.EosId;
    public bool AddBos => Tokenizer.AddBosToken;
}

/// <summary>A checkpoint's chat template as chat data reads it.</summary>
internal sealed class TemplateChatFormat(ChatTemplate template) : IChatFormat
{
    public ChatTemplate Template { get; } = template;

    private static List<ChatMessage> Messages(IReadOnlyList<ChatTurn> turns) => turns.Select(t => new ChatMessage(t.Role, t.Content)).ToList();

    public string Render(IReadOnlyList<ChatTurn> messages, bool addGenerationPrompt) => Template.Render(Messages(messages), addGenerationPrompt);

    public IReadOnlyList<(int Start, int End)> AssistantSpans(IReadOnlyList<ChatTurn> messages) =>
        Template.AssistantSpans(Messages(messages)).Select(s => (s.Start, s.End)).ToArray();
}
