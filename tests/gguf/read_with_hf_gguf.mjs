// Parses a GGUF file with @huggingface/gguf (an independent implementation)
// and prints its metadata and tensor infos as JSON (bigints as strings).
// Used by writer_test to check that files tandem writes are readable by
// other GGUF tools.
import { gguf } from "@huggingface/gguf";

const path = process.argv[2];
const { metadata, tensorInfos, tensorDataOffset } = await gguf(path, { allowLocalFile: true });
const replacer = (_k, v) => (typeof v === "bigint" ? v.toString() : v);
process.stdout.write(JSON.stringify({ metadata, tensorInfos, tensorDataOffset }, replacer));
