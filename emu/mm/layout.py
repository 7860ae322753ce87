"""Global numbering shared by every rank: virtual pages, contents, frames, mms, files.

Each process's mappings are laid out one after another in its address space; the
address spaces of all processes are numbered one after another into global virtual
page numbers ("vpage"), so one flat array can hold every page table entry. A content
id ("cid") names what a page holds: a file page, or the anonymous page at a vpage.
"""

from dataclasses import dataclass, field


@dataclass
class VmaLayout:
    idx: int            # position in Layout.vmas
    name: str
    mm: int
    start: int          # first global vpage
    pages: int
    kind: str           # anon | file | code
    file: int           # file id, -1 for anon
    prot: str
    shared: bool
    mapped: bool
    populate: bool


@dataclass
class Layout:
    nr_vpages: int = 0
    nr_frames: int = 0
    dram_pages: int = 0
    nr_cids: int = 0
    mm_names: list = field(default_factory=list)
    mm_base: list = field(default_factory=list)
    mm_pages: list = field(default_factory=list)
    vmas: list = field(default_factory=list)        # VmaLayout, in order
    vma_by_mm_name: dict = field(default_factory=dict)
    file_names: list = field(default_factory=list)
    file_base: list = field(default_factory=list)   # first cid of each file
    file_pages: list = field(default_factory=list)
    anon_cid_base: int = 0

    def node_of(self, pfn: int) -> int:
        """NUMA node of a frame: 0 is DRAM (with the CPUs), 1 the CPU-less CXL node."""
        return 0 if pfn < self.dram_pages else 1

    def anon_cid(self, vpage: int) -> int:
        return self.anon_cid_base + vpage

    def file_cid(self, file: int, index: int) -> int:
        return self.file_base[file] + index


def build_layout(sc: dict) -> Layout:
    lay = Layout()
    lay.dram_pages = sc["machine"]["dram_pages"]
    lay.nr_frames = lay.dram_pages + sc["machine"]["cxl_pages"]
    file_ids = {}
    cid = 0
    for i, f in enumerate(sc["file"]):
        file_ids[f["name"]] = i
        lay.file_names.append(f["name"])
        lay.file_base.append(cid)
        lay.file_pages.append(f["pages"])
        cid += f["pages"]
    vpage = 0
    for m, p in enumerate(sc["process"]):
        lay.mm_names.append(p["name"] or f"proc{m}")
        lay.mm_base.append(vpage)
        start = vpage
        for mp in p["mappings"]:
            under = lay.vma_by_mm_name.get((m, mp["overlay"]))
            v = VmaLayout(len(lay.vmas), mp["name"], m, under.start if under else vpage, mp["pages"],
                          mp["kind"], file_ids.get(mp["file"], -1), mp["prot"], mp["shared"],
                          mp["mapped"], mp["populate"])
            lay.vmas.append(v)
            lay.vma_by_mm_name[(m, mp["name"])] = v
            if under is None:
                vpage += mp["pages"]
        lay.mm_pages.append(vpage - start)
    lay.nr_vpages = vpage
    lay.anon_cid_base = cid
    lay.nr_cids = cid + vpage
    return lay
