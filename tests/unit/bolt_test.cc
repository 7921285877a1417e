#include "volprep/bolt.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "volprep/fd.h"
#include "volprep/volume_store.h"

using namespace volprep;

namespace {

const std::string kFixtures = std::string(VOLPREP_FIXTURES) + "/docker/";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A bbolt file built by hand, page by page (page size 4096).
constexpr uint32_t kPs = 4096;

void put(std::string& s, uint64_t v, int bytes) {  // little endian, at most 8 bytes
  for (int i = 0; i < bytes && i < 8; ++i) s.push_back(char(v >> (8 * i)));
}

std::string page_header(uint64_t id, uint16_t flags, uint16_t count, uint32_t overflow) {
  std::string p;
  put(p, id, 8);
  put(p, flags, 2);
  put(p, count, 2);
  put(p, overflow, 4);
  return p;
}

uint64_t fnv(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string meta_page(uint64_t id, uint64_t root, uint64_t high_water, uint64_t txid) {
  std::string m;
  put(m, 0xED0CDAED, 4);
  put(m, 2, 4);
  put(m, kPs, 4);
  put(m, 0, 4);
  put(m, root, 8);
  put(m, 0, 8);
  put(m, 2, 8);  // freelist
  put(m, high_water, 8);
  put(m, txid, 8);
  put(m, fnv(m), 8);
  return page_header(id, 0x04, 0, 0) + m;
}

struct Element {
  uint32_t flags;
  std::string key, value;
};
// A leaf page's elements and data (pos counted from each element's start).
std::string leaf_data(const std::vector<Element>& es) {
  std::string head, data;
  for (size_t i = 0; i < es.size(); ++i) {
    put(head, es[i].flags, 4);
    put(head, (es.size() - i) * 16 + data.size(), 4);
    put(head, es[i].key.size(), 4);
    put(head, es[i].value.size(), 4);
    data += es[i].key + es[i].value;
  }
  return head + data;
}
std::string leaf_page(uint64_t id, const std::vector<Element>& es, uint32_t overflow = 0) {
  return page_header(id, 0x02, uint16_t(es.size()), overflow) + leaf_data(es);
}
std::string branch_page(uint64_t id, const std::vector<std::pair<std::string, uint64_t>>& kids) {
  std::string head, data;
  for (size_t i = 0; i < kids.size(); ++i) {
    put(head, (kids.size() - i) * 16 + data.size(), 4);
    put(head, kids[i].first.size(), 4);
    put(head, kids[i].second, 8);
    data += kids[i].first;
  }
  return page_header(id, 0x01, uint16_t(kids.size()), 0) + head + data;
}
// A bucket value: its header with root 0 and its inline leaf page, or a root page id.
std::string inline_bucket(const std::vector<Element>& es) {
  std::string v;
  put(v, 0, 8);  // root: 0, the page inline
  put(v, 0, 8);  // sequence
  return v + leaf_page(0, es);
}
std::string bucket_at(uint64_t root) {
  std::string v;
  put(v, root, 8);
  put(v, 0, 8);
  return v;
}

// pages[i] is page i (padded); metas 0 and 1 given root 3 unless they are set.
std::string file_of(std::vector<std::string> pages) {
  std::string out;
  for (auto& p : pages) {
    p.resize(std::max<size_t>(kPs, (p.size() + kPs - 1) / kPs * kPs));
    out += p;
  }
  return out;
}
std::string with_metas(std::vector<std::string> pages, uint64_t root = 3) {
  pages[0] = meta_page(0, root, pages.size(), 4);
  pages[1] = meta_page(1, root, pages.size(), 3);
  return file_of(pages);
}

const std::string kWeb = R"({"Name":"web","Driver":"local","Labels":{"a":"1"},"Options":null})";
const std::string kNfs = R"({"Name":"nfs","Driver":"rexray","Labels":null,"Options":{"size":"1"}})";

Result<std::optional<std::vector<BoltItem>>> volumes_of(const std::string& bytes) {
  auto f = BoltFile::from_bytes(bytes, "t.db");
  if (!f) return f.error();
  return f->bucket("volumes");
}

}  // namespace

// Made by a real dockerd 20.10 (fixtures/docker/README).
TEST(Bolt, DockersSmallStoreInlineBucket) {
  UniqueFd fd(::open((kFixtures + "metadata-small.db").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  auto store = read_volume_store(fd.get(), "metadata-small.db");
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_EQ(store->volumes.size(), 2u);
  const VolumeRecord& web = store->volumes.at("web");
  EXPECT_EQ(web.driver, "local");
  EXPECT_EQ(web.labels, (KeyValues{{"com.example.app", "web"}}));
  EXPECT_EQ(web.options, (KeyValues{{"device", "tmpfs"}, {"type", "tmpfs"}}));
  EXPECT_EQ(describe_labels(web), "labels com.example.app=web; options device=tmpfs, type=tmpfs");
  EXPECT_EQ(create_arguments(web), "--label com.example.app=web --opt device=tmpfs --opt type=tmpfs");
  EXPECT_EQ(describe_labels(store->volumes.at("empty")), "no labels or options");
}

TEST(Bolt, DockersStoreOfManyVolumesBranchesAndOverflow) {
  UniqueFd fd(::open((kFixtures + "metadata-many.db").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  auto store = read_volume_store(fd.get(), "metadata-many.db");
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ(store->volumes.size(), 64u);
  EXPECT_EQ(store->volumes.at("db").labels, (KeyValues{{"com.example.app", "db"}, {"owner", "ops"}}));
  EXPECT_TRUE(store->volumes.at("db").options.empty());
  EXPECT_EQ(store->volumes.at("cache").options,
            (KeyValues{{"device", "tmpfs"}, {"o", "size=10m,uid=1000"}, {"type", "tmpfs"}}));
  EXPECT_EQ(create_arguments(store->volumes.at("cache")),
            "--label tier=cache --opt device=tmpfs --opt o=size=10m,uid=1000 --opt type=tmpfs");
  EXPECT_EQ(store->volumes.at("vol37").labels.at(0), (std::pair<std::string, std::string>{"n", "37"}));
  // A value longer than a page: on overflow pages.
  EXPECT_EQ(store->volumes.at("bigval").labels.at(0).second, std::string(6000, 'y'));
}

TEST(Bolt, EveryByteOfDockersFileFlippedIsReadOrRefused) {
  const std::string good = slurp(kFixtures + "metadata-many.db");
  ASSERT_EQ(good.size(), 65536u);
  size_t refused = 0;
  for (size_t at = 0; at < good.size(); at += 7) {
    std::string bad = good;
    bad[at] = char(bad[at] ^ 0x5a);
    auto items = volumes_of(bad);
    refused += !items;
  }
  EXPECT_GT(refused, 0u);
}

TEST(Bolt, HandMadeBranchLeafAndNestedBucket) {
  std::vector<std::string> pages(7);
  pages[3] = leaf_page(3, {{1, "volumes", bucket_at(4)}});
  pages[4] = branch_page(4, {{"nfs", 5}, {"web", 6}});
  pages[5] = leaf_page(5, {{0, "nfs", kNfs}, {1, "sub", inline_bucket({{0, "x", "y"}})}});
  pages[6] = leaf_page(6, {{0, "web", kWeb}});
  auto items = volumes_of(with_metas(pages));
  ASSERT_TRUE(items) << items.error().message;
  ASSERT_TRUE(*items);
  ASSERT_EQ((*items)->size(), 3u);
  EXPECT_EQ((**items)[0].key, "nfs");
  EXPECT_TRUE((**items)[1].bucket);
  EXPECT_EQ((**items)[2].value, kWeb);
  auto nfs = parse_volume_record("nfs", kNfs);
  ASSERT_TRUE(nfs);
  EXPECT_EQ(nfs->driver, "rexray");
}

TEST(Bolt, NoSuchBucket) {
  std::vector<std::string> pages(4);
  pages[3] = leaf_page(3, {{1, "other", inline_bucket({})}});
  auto items = volumes_of(with_metas(pages));
  ASSERT_TRUE(items);
  EXPECT_FALSE(*items);
}

TEST(Bolt, MetaWithTheHigherTxidAndAValidChecksumWins) {
  std::vector<std::string> pages(5);
  pages[3] = leaf_page(3, {{1, "volumes", inline_bucket({{0, "old", kWeb}})}});
  pages[4] = leaf_page(4, {{1, "volumes", inline_bucket({{0, "new", kWeb}})}});
  pages[0] = meta_page(0, 3, 5, 7);
  pages[1] = meta_page(1, 4, 5, 8);
  auto f = BoltFile::from_bytes(file_of(pages), "t.db");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->txid(), 8u);
  EXPECT_EQ((*f->bucket("volumes"))->at(0).key, "new");
  // Meta 1 damaged: meta 0 is current.
  std::string file = file_of(pages);
  file[kPs + 16 + 48] ^= 1;  // its txid, under the checksum
  f = BoltFile::from_bytes(file, "t.db");
  ASSERT_TRUE(f);
  EXPECT_EQ((*f->bucket("volumes"))->at(0).key, "old");
  // Meta 0 damaged: meta 1, found at the page size it names.
  file = file_of(pages);
  file[16] ^= 1;  // magic
  f = BoltFile::from_bytes(file, "t.db");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->txid(), 8u);
  // Both damaged.
  file[kPs + 16 + 48] ^= 1;
  f = BoltFile::from_bytes(file, "t.db");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("t.db: not a bbolt file Docker wrote: neither meta page is valid"), std::string::npos);
}

TEST(Bolt, DamageIsRefusedNamingThePage) {
  auto refused = [](std::vector<std::string> pages, const std::string& why) {
    auto items = volumes_of(with_metas(pages));
    ASSERT_FALSE(items) << why;
    EXPECT_NE(items.error().message.find(why), std::string::npos) << items.error().message;
  };
  std::vector<std::string> pages(5);
  pages[3] = leaf_page(3, {{1, "volumes", bucket_at(4)}});
  // A branch that holds itself: a cycle.
  pages[4] = branch_page(4, {{"a", 4}});
  refused(pages, "page 4: reached twice (a cycle in the tree)");
  // Two branches that hold each other.
  pages.resize(6);
  pages[4] = branch_page(4, {{"a", 5}});
  pages[5] = branch_page(5, {{"a", 4}});
  refused(pages, "page 4: reached twice");
  // A child past the file's pages; a meta page, page 0 or 1, as a child.
  pages[5] = branch_page(5, {{"a", 99}});
  refused(pages, "page 99: a page id outside the file's pages");
  pages[5] = branch_page(5, {{"a", 1}});
  refused(pages, "page 1: a page id outside");
  // A page whose header names another page.
  pages[5] = leaf_page(7, {});
  refused(pages, "page 5: its header says page 7");
  // Overflow past the file.
  pages[5] = leaf_page(5, {}, 3);
  refused(pages, "page 5: its overflow (3 pages) runs past the file");
  // An element whose key or value runs past the page; more elements than fit.
  pages[5] = leaf_page(5, {{0, "k", "v"}});
  pages[5][16 + 15] = char(0xff);  // the value size's high byte
  refused(pages, "page 5: element 0 runs past the page");
  pages[5] = page_header(5, 0x02, 300, 0);
  refused(pages, "page 5: 300 elements do not fit the page");
  pages[5] = page_header(5, 0x10, 0, 0);
  refused(pages, "page 5: neither a branch nor a leaf page");
  // An inline bucket shorter than its header; one whose page is not a leaf.
  pages[3] = leaf_page(3, {{1, "volumes", "short"}});
  refused(pages, "bucket volumes: a bucket value shorter than a bucket header");
  pages[3] = leaf_page(3, {{1, "volumes", std::string(16, '\0') + branch_page(0, {})}});
  refused(pages, "bucket volumes: an inline bucket whose page is not a leaf");
  // "volumes" not a bucket.
  pages[3] = leaf_page(3, {{0, "volumes", "x"}});
  refused(pages, "the key \"volumes\" is not a bucket");
  // More pages counted than the file has.
  auto f = BoltFile::from_bytes(file_of({meta_page(0, 3, 9, 1), meta_page(1, 3, 9, 0), leaf_page(2, {}), leaf_page(3, {})}), "t.db");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("its meta counts 9 pages, the file holds 4"), std::string::npos);
}

TEST(Bolt, DepthIsBounded) {
  // A chain of 40 branch pages, each holding the next: no cycle, but deeper than any tree.
  std::vector<std::string> pages(45);
  pages[3] = leaf_page(3, {{1, "volumes", bucket_at(4)}});
  for (uint64_t i = 4; i < 44; ++i) pages[i] = branch_page(i, {{"a", i + 1}});
  pages[44] = leaf_page(44, {});
  auto items = volumes_of(with_metas(pages));
  ASSERT_FALSE(items);
  EXPECT_NE(items.error().message.find("deeper than 32 levels"), std::string::npos) << items.error().message;
}

TEST(VolumeStore, RecordsThatAreNotDockersAreRefused) {
  for (const char* bad : {"", "[]", "{}", R"({"Driver":3})", R"({"Driver":"local","Labels":[1]})",
                          R"({"Driver":"local","Options":{"a":1}})", "{\"Driver\":\"local\""}) {
    auto r = parse_volume_record("v", bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("the record of volume v is not Docker's"), std::string::npos);
  }
  auto r = parse_volume_record("v", R"({"Driver":"local","Labels":{"b":"it's","a":"x\ny"}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(describe_labels(*r), "labels a=x\\ny, b=it's");
  EXPECT_EQ(create_arguments(*r), "--label 'a=x\\ny' --label 'b=it'\\''s'");
}

// What a move costs: the labels kept where the store still holds the record, else named with
// the arguments that give a new volume them.
TEST(VolumeStore, LabelsAfterAMove) {
  VolumeRecord db{"db", "local", {{"owner", "ops"}}, {{"type", "tmpfs"}}};
  EXPECT_EQ(labels_after_move({"plain", "local", {}, {}}, "s.db", nullptr, "/d"), "");
  EXPECT_EQ(labels_after_move(db, "/d/volumes/metadata.db", nullptr, "/d/5.5"),
            "volume db: labels owner=ops; options type=tmpfs (/d/volumes/metadata.db): Docker does not carry them "
            "with its directory; the dockerd on /d/5.5 will list it with none (the local driver still mounts it "
            "with its options, which it keeps in the volume's opts.json too); a volume made there with `docker "
            "volume create --label owner=ops --opt type=tmpfs NAME` has them");
  EXPECT_EQ(labels_after_move(db, "j.vpj", &db, "/d"),
            "volume db: the dockerd on /d lists it with its labels owner=ops; options type=tmpfs again: its store "
            "there still holds its record");
  VolumeRecord made_anew{"db", "local", {}, {}};
  EXPECT_NE(labels_after_move(db, "j.vpj", &made_anew, "/d").find("will list it with no labels or options (the record "
                                                                    "of that name in its store)"),
            std::string::npos);
}

// A CIFS or NFS volume of the local driver keeps its credentials in its options: printed
// (rollback, journal show, the labels warning) with the secrets as ***, the rest as it is.
TEST(Bolt, SecretsInOptionsAreRedacted) {
  VolumeRecord r;
  r.name = "share";
  r.options = {{"device", "//srv/share"},
               {"o", "addr=10.0.0.1,username=bob,password=hunter2,vers=3.0,credentials=/root/c,ro"},
               {"secret", "s3"},
               {"type", "cifs"},
               {"x-api-token", "t0k"}};
  const std::string described = describe_labels(r), args = create_arguments(r);
  for (const char* secret : {"hunter2", "/root/c", "s3", "t0k"}) {
    EXPECT_EQ(described.find(secret), std::string::npos) << described;
    EXPECT_EQ(args.find(secret), std::string::npos) << args;
  }
  EXPECT_EQ(described, "options device=//srv/share, o=addr=10.0.0.1,username=bob,password=***,vers=3.0,"
                       "credentials=***,ro, secret=***, type=cifs, x-api-token=***");
  EXPECT_NE(labels_after_move(r, "here", nullptr, "/r").find("secrets shown as ***"), std::string::npos);
  EXPECT_EQ(r.options.at(1).second.find("hunter2") != std::string::npos, true);  // the record itself kept whole
}
