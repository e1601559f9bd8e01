// Package terms is the tokeniser of the text services, bm25 and bayes. A
// service must split its corpus (an index, a training set) and its
// requests (queries, messages) in exactly the same way, or a word of a
// request would miss the identical word of the corpus; sharing one
// tokeniser also makes the two services agree on what a word is.
//
// A term is a maximal run of ASCII letters and digits and bytes >= 0x80
// (so UTF-8 words stay whole); everything else separates terms; ASCII
// letters are lowercased. Terms longer than [MaxLen] bytes are skipped.
// [Next] walks a text term by term without allocating, for the request
// path; [Tokenise] numbers the terms of a whole corpus.
package terms
