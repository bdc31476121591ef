"""Vietnamese vocabulary for the demo site: people, enterprises, places, notes.

All text here is Unicode NFC; the dirty-data module derives the legacy
encodings (TCVN3, VNI, NFD) from it, so the clean value of every planted
defect is known.
"""

from __future__ import annotations

import random
import unicodedata

FAMILY_NAMES = (
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
    "Đinh",
    "Trịnh",
    "Mai",
    "Tạ",
)
MALE_MIDDLE = ("Văn", "Hữu", "Đức", "Minh", "Quang", "Xuân", "Thành", "Công", "Đình", "Quốc")
FEMALE_MIDDLE = ("Thị", "Ngọc", "Thu", "Thanh", "Bích", "Kim", "Hồng", "Minh", "Phương", "Diệu")
MALE_GIVEN = (
    "An",
    "Bình",
    "Cường",
    "Dũng",
    "Hải",
    "Hiếu",
    "Hùng",
    "Khánh",
    "Long",
    "Nam",
    "Phúc",
    "Quân",
    "Sơn",
    "Thắng",
    "Tuấn",
    "Việt",
    "Đạt",
    "Trung",
    "Tùng",
    "Lực",
)
FEMALE_GIVEN = (
    "Hà",
    "Hạnh",
    "Hoa",
    "Hương",
    "Lan",
    "Linh",
    "Mai",
    "Nga",
    "Phương",
    "Quỳnh",
    "Thảo",
    "Trang",
    "Vân",
    "Yến",
    "Ngân",
    "Huyền",
    "Nhung",
    "Thủy",
    "Loan",
    "Ánh",
)

COMPANY_FORMS = (
    "Công ty TNHH",
    "Công ty Cổ phần",
    "Doanh nghiệp tư nhân",
    "Hợp tác xã",
    "Công ty TNHH một thành viên",
    "Trường Mầm non",
    "Chi nhánh Công ty Cổ phần",
)
COMPANY_TRADES = (
    "Xây dựng",
    "Thương mại Dịch vụ",
    "May mặc",
    "Vận tải",
    "Chế biến Thực phẩm",
    "Cơ khí",
    "Điện tử",
    "Du lịch",
    "Nông sản",
    "Dược phẩm",
    "Giáo dục",
    "Phần mềm",
    "Đồ gỗ",
    "Thủy sản",
    "Bất động sản",
)
COMPANY_NAMES = (
    "Hòa Bình",
    "Thành Công",
    "Việt Tiến",
    "Đại Phát",
    "Hưng Thịnh",
    "Phú Quý",
    "Sông Hồng",
    "Trường Sơn",
    "An Khang",
    "Minh Đức",
    "Bình Minh",
    "Hồng Hà",
    "Tân Phước",
    "Nam Việt",
    "Ánh Dương",
    "Quang Trung",
    "Thăng Long",
    "Hải Âu",
)

STREETS = (
    "Trần Hưng Đạo",
    "Lê Lợi",
    "Nguyễn Trãi",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Điện Biên Phủ",
    "Hoàng Diệu",
    "Phan Đình Phùng",
    "Quang Trung",
    "Bà Triệu",
    "Nguyễn Du",
    "Tôn Đức Thắng",
)
WARDS = (
    "Phúc Xá",
    "Trúc Bạch",
    "Cửa Nam",
    "Hàng Bột",
    "Láng Hạ",
    "Dịch Vọng",
    "Bến Nghé",
    "Tân Định",
    "Hòa Cường",
    "An Hải",
    "Vĩnh Ninh",
    "Thạch Thang",
)
DISTRICTS = (
    "Ba Đình",
    "Hoàn Kiếm",
    "Đống Đa",
    "Cầu Giấy",
    "Hai Bà Trưng",
    "Thanh Xuân",
    "Long Biên",
    "Hà Đông",
    "Tây Hồ",
    "Hoàng Mai",
)

# Province codes as used in office codes, tax codes and social insurance numbers.
PROVINCES = {
    "01": "thành phố Hà Nội",
    "22": "tỉnh Quảng Ninh",
    "27": "tỉnh Bắc Ninh",
    "31": "thành phố Hải Phòng",
    "38": "tỉnh Thanh Hóa",
    "40": "tỉnh Nghệ An",
    "46": "thành phố Huế",
    "48": "thành phố Đà Nẵng",
    "74": "tỉnh Bình Dương",
    "75": "tỉnh Đồng Nai",
    "79": "Thành phố Hồ Chí Minh",
    "92": "thành phố Cần Thơ",
}

DOSSIER_NOTES = (
    "Bổ sung hồ sơ theo yêu cầu của cơ quan bảo hiểm",
    "Đã trả kết quả qua bưu điện",
    "Đơn vị đề nghị điều chỉnh mức đóng",
    "Thiếu chữ ký của người lao động",
    "Hồ sơ điều chỉnh giảm lao động nghỉ việc",
    "Đề nghị cấp lại sổ bảo hiểm xã hội",
    "Người lao động nghỉ ốm dài ngày",
    "Đã liên hệ đơn vị qua điện thoại",
)
HISTORY_NOTES = {
    0: "Đơn vị nộp hồ sơ điện tử",
    1: "Tiếp nhận hồ sơ",
    2: "Chuyển bộ phận xử lý",
    3: "Yêu cầu bổ sung hồ sơ",
    4: "Trả kết quả",
    5: "Từ chối hồ sơ",
    6: "Hủy hồ sơ",
}
LOG_ACTIONS = (
    "Đăng nhập",
    "Đăng xuất",
    "Tiếp nhận hồ sơ",
    "Tra cứu hồ sơ",
    "Xuất báo cáo tháng",
    "Đổi mật khẩu",
    "Đăng nhập sai mật khẩu",
    "Cập nhật danh mục đơn vị",
)


def province_name(province_code: str) -> str:
    return PROVINCES.get(province_code, f"tỉnh mã {province_code}")


def person_name(rng: random.Random, male: bool) -> str:
    """A full name, family name first: 'Nguyễn Văn An'."""
    middle = MALE_MIDDLE if male else FEMALE_MIDDLE
    given = MALE_GIVEN if male else FEMALE_GIVEN
    return f"{rng.choice(FAMILY_NAMES)} {rng.choice(middle)} {rng.choice(given)}"


def company_name(rng: random.Random) -> str:
    return f"{rng.choice(COMPANY_FORMS)} {rng.choice(COMPANY_TRADES)} {rng.choice(COMPANY_NAMES)}"


def address(rng: random.Random, province_code: str) -> str:
    return (
        f"Số {rng.randint(1, 299)} {rng.choice(STREETS)}, phường {rng.choice(WARDS)}, "
        f"quận {rng.choice(DISTRICTS)}, {province_name(province_code)}"
    )


def ascii_fold(text: str) -> str:
    """Vietnamese without diacritics, for logins and e-mail addresses: 'Đặng Thủy' -> 'Dang Thuy'."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))
