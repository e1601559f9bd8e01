// Package knn is the knn microservice of E3: a k-nearest-neighbours
// classifier over a labelled set of float32 feature vectors.
//
// # What it does
//
// At New the service draws its labelled dataset and keeps it read-only, so
// it is stateless. A request carries a feature vector q; the service finds
// the k points nearest to q by squared Euclidean distance in float32 and
// replies with their majority label. Among points at equal distance the one
// with the lower index counts as nearer; a tie in votes goes to the tied
// label whose nearest member is nearest, so every answer is deterministic.
//
// The search is brute force: every point is compared, keeping the k best
// in a max-heap whose root is the current k-th distance. At the default
// size (4,096 points of 16 dimensions, 256 KiB, which stays in the L2
// cache) that is the honest baseline: space-partitioning trees lose most of
// their pruning above about ten dimensions and would add pointer chasing to
// a scan the hardware prefetches perfectly. The 16-dimensional distance is
// fully unrolled into four independent sums (a general version unrolls any
// dimension by four, in the same summation order), about 7 ns per point on
// one core of the development machine, the scalar limit without SIMD. Checking
// partial sums against the k-th distance after eight coordinates was tried
// and measured slower. A request allocates nothing: the query, the heap and
// the votes live on the stack.
//
// # Dataset
//
// By default 4,096 points in 16 dimensions drawn from a mixture of 8
// Gaussian clusters (standard deviation 0.6 per coordinate) whose centres
// are uniform in [-1, 1]^16; cluster c carries label c mod 4, so each of
// the 4 labels is two separate blobs. The clusters overlap: on the
// generator's queries the classifier is right about 96% of the time. The
// dataset comes from the configured seed, not the instance's, so every
// replica and shard classifies alike. Drawing it takes about 1 ms.
//
// # Request
//
// A [service.Event]. The service reads only Features, which must hold
// exactly dims float32 values, all finite; Op, Key, Item, Value, Time,
// Token and Text are ignored. A request that does not decode, has another
// number of features, or a NaN or infinite feature, is rejected with an
// error wrapping [service.ErrMalformed] and is not passed on. Finite values
// too large to square give an infinite distance, which still ranks.
//
// # Reply
//
// Little endian, 12 bytes (decoded by [ParseReply] into a [Result]):
//
//	0  label    u16  majority label of the k nearest points
//	2  votes    u16  how many of the k carry it
//	4  kth      f32  Euclidean distance to the k-th nearest point
//	8  nearest  u32  index of the nearest point
//
// # Downstream
//
// The request event is emitted unchanged with the key it was routed by.
//
// # Configuration
//
//	k         neighbours that vote, default 5, at most 64 and at most points
//	points    dataset size, default 4096
//	dims      dimensions, default 16 (others use the general distance loop), at most 1024
//	clusters  Gaussian clusters, default 8
//	labels    labels (cluster c has label c mod labels), default 4, at most 256
//	sigma     standard deviation per coordinate, default 0.6
//	seed      seed of the dataset
//
// # Requests for tests and benchmarks
//
// [NewGenerator] draws points from the default dataset's mixture: OpObserve
// events whose Key is a device id among 10,000, whose Item is the label of
// the cluster drawn (for accuracy tests; the service ignores it) and whose
// Features are the 16 coordinates (64 bytes), padded to the requested size
// (512 bytes by default; never below the 112 bytes of content). The routing
// key is a hash of the device id.
package knn
