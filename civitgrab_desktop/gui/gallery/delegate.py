"""Paints a gallery card: the thumbnail (or the hover preview's current video frame, or a
placeholder while it loads), the NSFW level badge, a video badge, and the tag / WebP state (a
folder for a video the converter filed into the organized layout).

Painting never waits: a missing thumbnail is requested from the loader and a placeholder is
drawn; the loader's `ready` signal repaints the card. Nothing here scales an image per paint
(thumbnails arrive at the exact size), except the hover preview's frame.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.gallery.model import GalleryItem, ItemRole
from civitgrab_desktop.gui.gallery.query import NSFW_COLOUR, nsfw_label
from civitgrab_desktop.gui.gallery.thumbnails import ThumbnailLoader, thumb_corner
from civitgrab_desktop.gui.gallery.video import HoverPreview

GAP = 10  # between cards
PAD = 6  # inside a card, around the thumbnail
CAPTION = 24  # caption line under the thumbnail
RADIUS = 10  # the card's corners (the thumbnail's: thumbnails.thumb_corner)


class GalleryDelegate(QStyledItemDelegate):
    def __init__(self, loader: ThumbnailLoader, preview: HoverPreview | None = None, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.preview = preview
        self.thumb_size = 176
        self.captions = True
        # Everything that looks the same on many cards is drawn once into a pixmap: icons, the
        # card backgrounds (per state and colours), the badges (per text and colour), elided
        # user names. Keys hold the colours they were drawn in, so a theme change just makes
        # new entries. The per-card cost is then a few drawPixmap/drawImage and two drawText.
        self._pixmaps: dict[tuple, QPixmap] = {}
        self._elided: dict[tuple[str, int], str] = {}
        self._widths: dict[str, int] = {}
        self._badge_font: QFont | None = None
        self._caption_font: QFont | None = None
        self.paint_count = 0

    # -- geometry ---------------------------------------------------------------------------------

    def set_thumb_size(self, size: int) -> None:
        self.thumb_size = int(size)
        self.captions = size >= 112
        self._elided.clear()

    def cell_size(self) -> QSize:
        caption = CAPTION if self.captions else 0
        return QSize(self.thumb_size + 2 * PAD + GAP, self.thumb_size + 2 * PAD + caption + GAP)

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:  # noqa: N802
        return self.cell_size()

    def card_rect(self, cell: QRect) -> QRect:
        """The card, centred in its grid cell (cells widen to fill the row)."""
        half = GAP // 2
        width = self.thumb_size + 2 * PAD
        height = cell.height() - GAP
        x = cell.x() + max(half, (cell.width() - width) // 2)
        return QRect(x, cell.y() + half, width, height)

    def thumb_rect(self, cell: QRect) -> QRect:
        card = self.card_rect(cell)
        return QRect(card.x() + PAD, card.y() + PAD, self.thumb_size, self.thumb_size)

    # -- painting ---------------------------------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        self.paint_count += 1
        item: GalleryItem | None = index.data(ItemRole)
        palette = option.palette
        state = option.state
        selected = bool(state & QStyle.StateFlag.State_Selected)
        hovered = bool(state & QStyle.StateFlag.State_MouseOver)
        focused = bool(state & QStyle.StateFlag.State_HasFocus)
        card = self.card_rect(option.rect)
        thumb = QRect(card.x() + PAD, card.y() + PAD, self.thumb_size, self.thumb_size)
        device = painter.device()
        dpr = device.devicePixelRatioF() if device is not None else 1.0

        painter.drawPixmap(card.topLeft(), self._card(palette, card.size(), selected, hovered, focused, dpr))
        if item is None:
            painter.drawPixmap(thumb.topLeft(), self._blank(palette, dpr))
            return

        drawn = False
        if item.is_video and self.preview is not None and self.preview.active_id == item.id:
            frame = self.preview.frame(item.id)
            if frame is not None:  # one card at a time: clipping and scaling are fine here
                painter.save()
                painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                clip = QPainterPath()
                corner = thumb_corner(self.thumb_size)
                clip.addRoundedRect(QRectF(thumb), corner, corner)
                painter.setClipPath(clip)
                painter.drawImage(QRectF(thumb), frame, _cover_source(frame, thumb.width(), thumb.height()))
                painter.restore()
                drawn = True
        if not drawn:
            image = self.loader.get(item.thumb(), max(16, round(self.thumb_size * dpr)))
            if image is not None:
                painter.drawImage(thumb, image)  # exact size, corners already rounded
            else:
                self._placeholder(painter, palette, item, thumb, dpr, option)

        self._badges(painter, palette, item, thumb, dpr, option)
        if self.captions:
            self._caption_line(painter, option, item, thumb)

    def _placeholder(self, painter: QPainter, palette: QPalette, item: GalleryItem, thumb: QRect, dpr: float,
                     option) -> None:
        painter.drawPixmap(thumb.topLeft(), self._blank(palette, dpr))
        failure = self.loader.failure(item.id)
        name = "alert" if failure else ("play" if item.is_video else "image")
        icon_size = max(16, min(40, self.thumb_size // 4))
        pm = self._icon(name, icon_size, "muted", palette)
        painter.drawPixmap(thumb.center().x() - icon_size // 2, thumb.center().y() - icon_size // 2, pm)
        if failure and self.thumb_size >= 112:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.setFont(self._caption(option))
            text_rect = thumb.adjusted(8, icon_size + 12, -8, 0)
            text_rect.moveTop(thumb.center().y() + icon_size // 2 + 4)
            text = "File missing" if "missing" in failure else "No preview"
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text)

    def _badges(self, painter: QPainter, palette: QPalette, item: GalleryItem, thumb: QRect, dpr: float,
                option) -> None:
        inset = 6
        small = self.thumb_size < 112
        font = self._badge(option)
        # NSFW level, top left
        level = int(item.nsfw_level or 0)
        pm = self._pill(nsfw_label(level), NSFW_COLOUR.get(level, "#6b7080"), font, dpr)
        painter.drawPixmap(thumb.x() + inset, thumb.y() + inset, pm)
        # video, top right
        if item.is_video:
            pm = self._pill("" if small else "VIDEO", "#96000000", font, dpr, icon="play")
            painter.drawPixmap(thumb.right() + 1 - inset - round(pm.width() / dpr), thumb.y() + inset, pm)
        # state, bottom left: tags fetched (with their number) / failed, converted to WebP
        x = thumb.x() + inset
        bottom = thumb.bottom() + 1 - inset
        if item.tag_state in ("done", "failed"):
            done = item.tag_state == "done"
            text = "" if small or not done else str(item.tags_count)
            pm = self._pill(text, "#96000000" if done else "#c93636", font, dpr, icon="tag")
            painter.drawPixmap(x, bottom - round(pm.height() / dpr), pm)
            x += round(pm.width() / dpr) + 4
        if item.cv_state == "done":  # a video is not converted: it was filed in the organized layout
            pm = self._pill("", "#12805c", font, dpr, icon="folder") if item.is_video else \
                self._pill("WEBP", "#12805c", font, dpr)
            painter.drawPixmap(x, bottom - round(pm.height() / dpr), pm)

    def _caption_line(self, painter: QPainter, option, item: GalleryItem, thumb: QRect) -> None:
        palette = option.palette
        font = self._caption(option)
        painter.setFont(font)
        rect = QRect(thumb.x() + 2, thumb.bottom() + 4, thumb.width() - 4, CAPTION - 4)
        right = f"♥ {item.reactions}" if item.reactions else ""
        right_w = self._text_width(right, font) + 6 if right else 0
        user = item.username or "unknown"
        key = (user, rect.width() - right_w)
        elided = self._elided.get(key)
        if elided is None:
            if len(self._elided) > 20_000:
                self._elided.clear()
            elided = QFontMetrics(font).elidedText(user, Qt.TextElideMode.ElideRight, key[1])
            self._elided[key] = elided
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(rect.adjusted(0, 0, -right_w, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         elided)
        if right:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, right)

    # -- cached resources -------------------------------------------------------------------------

    def _text_width(self, text: str, font: QFont) -> int:
        width = self._widths.get(text)
        if width is None:
            if len(self._widths) > 5000:
                self._widths.clear()
            width = self._widths[text] = QFontMetrics(font).horizontalAdvance(text)
        return width

    def _icon(self, name: str, size: int, colour: str, palette: QPalette) -> QPixmap:
        resolved = palette.color(QPalette.ColorRole.PlaceholderText).name() if colour == "muted" else colour
        key = ("icon", name, size, resolved)
        pm = self._pixmaps.get(key)
        if pm is None:
            pm = icons.pixmap(name, size, resolved)
            self._pixmaps[key] = pm
        return pm

    def _card(self, palette: QPalette, size: QSize, selected: bool, hovered: bool, focused: bool,
              dpr: float) -> QPixmap:
        """The card's rounded background and border for one state, as a pixmap."""
        dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
        base = palette.color(QPalette.ColorRole.Button if dark else QPalette.ColorRole.Base)
        if hovered and not selected:
            base = base.lighter(112) if dark else base.darker(103)
        accent = palette.color(QPalette.ColorRole.Highlight)
        border = palette.color(QPalette.ColorRole.Mid if dark else QPalette.ColorRole.Midlight)
        key = ("card", size.width(), size.height(), dpr, selected, focused and not selected, base.rgba(),
               accent.rgba(), border.rgba(), dark)
        pm = self._pixmaps.get(key)
        if pm is not None:
            return pm
        pm = _transparent(size, dpr)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        rect = QRectF(0, 0, size.width(), size.height())
        if selected:
            soft = QColor(accent)
            soft.setAlpha(60 if dark else 40)
            p.setBrush(base)
            p.setPen(QPen(accent, 2))
            p.drawRoundedRect(rect.adjusted(1, 1, -1, -1), RADIUS, RADIUS)
            p.setBrush(soft)
            p.setPen(Qt.PenStyle.NoPen)
            p.drawRoundedRect(rect.adjusted(1, 1, -1, -1), RADIUS, RADIUS)
        else:
            p.setBrush(base)
            p.setPen(QPen(border, 1))
            p.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)
            if focused:
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.setPen(QPen(accent, 1, Qt.PenStyle.DashLine))
                p.drawRoundedRect(rect.adjusted(1.5, 1.5, -1.5, -1.5), RADIUS, RADIUS)
        p.end()
        self._pixmaps[key] = pm
        return pm

    def _blank(self, palette: QPalette, dpr: float) -> QPixmap:
        """The empty thumbnail area (rounded like the thumbnails)."""
        dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
        colour = palette.color(QPalette.ColorRole.Base if dark else QPalette.ColorRole.AlternateBase)
        key = ("blank", self.thumb_size, dpr, colour.rgba())
        pm = self._pixmaps.get(key)
        if pm is None:
            size = QSize(self.thumb_size, self.thumb_size)
            pm = _transparent(size, dpr)
            p = QPainter(pm)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            corner = thumb_corner(self.thumb_size)
            p.drawRoundedRect(QRectF(0, 0, size.width(), size.height()), corner, corner)
            p.end()
            self._pixmaps[key] = pm
        return pm

    def _pill(self, text: str, colour: str, font: QFont, dpr: float, *, icon: str | None = None) -> QPixmap:
        """A badge: a rounded pill in `colour` (#AARRGGBB allowed) with an icon and/or white text."""
        key = ("pill", text, colour, icon, font.key(), dpr)
        pm = self._pixmaps.get(key)
        if pm is not None:
            return pm
        fm = QFontMetrics(font)
        h = fm.height() + 6
        text_w = fm.horizontalAdvance(text) if text else 0
        if icon:
            w = h + (text_w + 6 if text else 0)
        else:
            w = text_w + 12
        pm = _transparent(QSize(w, h), dpr)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        _pill(p, QRectF(0, 0, w, h), QColor(colour))
        p.setPen(QColor("#ffffff"))
        p.setFont(font)
        if icon:
            p.drawPixmap(QPointF(3 if icon == "tag" else 4, 3), icons.pixmap(icon, h - 6, "#ffffff"))
            if text:
                p.drawText(QRectF(h - 1, 0, w - h + 1, h), Qt.AlignmentFlag.AlignVCenter, text)
        else:
            p.drawText(QRectF(0, 0, w, h), Qt.AlignmentFlag.AlignCenter, text)
        p.end()
        self._pixmaps[key] = pm
        return pm

    def _badge(self, option) -> QFont:
        if self._badge_font is None:
            font = QFont(option.font)
            font.setPointSizeF(max(6.5, option.font.pointSizeF() * 0.78))
            font.setBold(True)
            self._badge_font = font
        return self._badge_font

    def _caption(self, option) -> QFont:
        if self._caption_font is None:
            font = QFont(option.font)
            font.setPointSizeF(max(7.0, option.font.pointSizeF() * 0.9))
            self._caption_font = font
        return self._caption_font


def _transparent(size: QSize, dpr: float) -> QPixmap:
    pm = QPixmap(max(1, round(size.width() * dpr)), max(1, round(size.height() * dpr)))
    pm.setDevicePixelRatio(dpr)
    pm.fill(Qt.GlobalColor.transparent)
    return pm


def _pill(painter: QPainter, rect: QRectF, colour: QColor) -> None:
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    radius = rect.height() / 2
    painter.drawRoundedRect(rect, radius, radius)


def _cover_source(image: QImage, width: int, height: int) -> QRectF:
    """The part of `image` that covers a width x height target (centred crop)."""
    iw, ih = image.width(), image.height()
    if iw <= 0 or ih <= 0 or width <= 0 or height <= 0:
        return QRectF(0, 0, max(iw, 1), max(ih, 1))
    scale = max(width / iw, height / ih)
    sw, sh = width / scale, height / scale
    return QRectF((iw - sw) / 2, (ih - sh) / 2, sw, sh)
