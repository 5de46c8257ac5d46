"""Paints a gallery card: the thumbnail (or the hover preview's current video frame, or a
placeholder while it loads), the NSFW level badge, a video badge, and the tag / WebP state.

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
from civitgrab_desktop.gui.gallery.thumbnails import ThumbnailLoader
from civitgrab_desktop.gui.gallery.video import HoverPreview

GAP = 10  # between cards
PAD = 6  # inside a card, around the thumbnail
CAPTION = 24  # caption line under the thumbnail
RADIUS = 10


class GalleryDelegate(QStyledItemDelegate):
    def __init__(self, loader: ThumbnailLoader, preview: HoverPreview | None = None, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.preview = preview
        self.thumb_size = 176
        self.captions = True
        self._pixmaps: dict[tuple[str, int, str], QPixmap] = {}
        self._badge_font: QFont | None = None
        self._caption_font: QFont | None = None
        self.paint_count = 0

    # -- geometry ---------------------------------------------------------------------------------

    def set_thumb_size(self, size: int) -> None:
        self.thumb_size = int(size)
        self.captions = size >= 112

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

    def invalidate_theme(self) -> None:
        self._pixmaps.clear()

    # -- painting ---------------------------------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        self.paint_count += 1
        item: GalleryItem | None = index.data(ItemRole)
        palette = option.palette
        dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        focused = bool(option.state & QStyle.StateFlag.State_HasFocus)
        card = self.card_rect(option.rect)
        thumb = self.thumb_rect(option.rect)

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        base = palette.color(QPalette.ColorRole.Button if dark else QPalette.ColorRole.Base)
        if hovered and not selected:
            base = base.lighter(112) if dark else base.darker(103)
        accent = palette.color(QPalette.ColorRole.Highlight)
        if selected:
            soft = QColor(accent)
            soft.setAlpha(60 if dark else 40)
            painter.setBrush(base)
            painter.setPen(QPen(accent, 2))
            painter.drawRoundedRect(QRectF(card).adjusted(1, 1, -1, -1), RADIUS, RADIUS)
            painter.setBrush(soft)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRoundedRect(QRectF(card).adjusted(1, 1, -1, -1), RADIUS, RADIUS)
        else:
            border = palette.color(QPalette.ColorRole.Mid if dark else QPalette.ColorRole.Midlight)
            painter.setBrush(base)
            painter.setPen(QPen(border, 1))
            painter.drawRoundedRect(QRectF(card).adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)
        if focused and not selected:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(accent, 1, Qt.PenStyle.DashLine))
            painter.drawRoundedRect(QRectF(card).adjusted(1.5, 1.5, -1.5, -1.5), RADIUS, RADIUS)

        clip = QPainterPath()
        clip.addRoundedRect(QRectF(thumb), RADIUS - 3, RADIUS - 3)
        placeholder = palette.color(QPalette.ColorRole.AlternateBase if not dark else QPalette.ColorRole.Base)
        if item is None:
            painter.fillPath(clip, placeholder)
            painter.restore()
            return

        painter.save()
        painter.setClipPath(clip)
        drawn = False
        if item.is_video and self.preview is not None and self.preview.active_id == item.id:
            frame = self.preview.frame(item.id)
            if frame is not None:
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                painter.drawImage(QRectF(thumb), frame, _cover_source(frame, thumb.width(), thumb.height()))
                drawn = True
        if not drawn:
            dpr = painter.device().devicePixelRatioF() if painter.device() is not None else 1.0
            px = max(16, round(self.thumb_size * dpr))
            image = self.loader.get(item.thumb(), px)
            if image is not None:
                painter.drawImage(thumb, image)
            else:
                painter.fillRect(thumb, placeholder)
                failure = self.loader.failure(item.id)
                name = "alert" if failure else ("play" if item.is_video else "image")
                icon_size = max(16, min(40, self.thumb_size // 4))
                pm = self._pixmap(name, icon_size, "muted")
                painter.drawPixmap(
                    thumb.center().x() - icon_size // 2, thumb.center().y() - icon_size // 2, pm
                )
                if failure and self.thumb_size >= 112:
                    painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
                    painter.setFont(self._caption(option))
                    text_rect = thumb.adjusted(8, icon_size + 12, -8, 0)
                    text_rect.moveTop(thumb.center().y() + icon_size // 2 + 4)
                    text = "File missing" if "missing" in failure else "No preview"
                    painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text)
        painter.restore()

        self._badges(painter, option, item, thumb)
        if self.captions:
            self._caption_line(painter, option, item, thumb)
        painter.restore()

    def _badges(self, painter: QPainter, option, item: GalleryItem, thumb: QRect) -> None:
        font = self._badge(option)
        painter.setFont(font)
        fm = QFontMetrics(font)
        h = fm.height() + 6
        inset = 6
        small = self.thumb_size < 112
        # NSFW level, top left
        level = nsfw_label(item.nsfw_level)
        colour = QColor(NSFW_COLOUR.get(int(item.nsfw_level or 0), "#6b7080"))
        w = fm.horizontalAdvance(level) + 12
        pill = QRectF(thumb.x() + inset, thumb.y() + inset, w, h)
        _pill(painter, pill, colour)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, level)
        # video, top right
        if item.is_video:
            icon = self._pixmap("play", h - 6, "#ffffff")
            label = "" if small else "VIDEO"
            w = h + (fm.horizontalAdvance(label) + 4 if label else 0)
            pill = QRectF(thumb.right() - inset - w + 1, thumb.y() + inset, w, h)
            _pill(painter, pill, QColor(0, 0, 0, 150))
            painter.drawPixmap(QPointF(pill.x() + 4, pill.y() + 3), icon)
            if label:
                painter.setPen(QColor("#ffffff"))
                painter.drawText(pill.adjusted(h - 2, 0, -4, 0), Qt.AlignmentFlag.AlignVCenter, label)
        # state, bottom left: tags fetched / failed, converted to WebP
        x = thumb.x() + inset
        y = thumb.bottom() - inset - h + 1
        if item.tag_state in ("done", "failed"):
            colour = QColor(0, 0, 0, 150) if item.tag_state == "done" else QColor("#c93636")
            text = "" if small or item.tag_state != "done" else str(item.tags_count)
            w = h + (fm.horizontalAdvance(text) + 2 if text else 0)
            pill = QRectF(x, y, w, h)
            _pill(painter, pill, colour)
            painter.drawPixmap(QPointF(pill.x() + 3, pill.y() + 3), self._pixmap("tag", h - 6, "#ffffff"))
            if text:
                painter.setPen(QColor("#ffffff"))
                painter.drawText(pill.adjusted(h - 3, 0, -3, 0), Qt.AlignmentFlag.AlignVCenter, text)
            x += w + 4
        if item.cv_state == "done":
            label = "WEBP"
            w = fm.horizontalAdvance(label) + 12
            pill = QRectF(x, y, w, h)
            _pill(painter, pill, QColor("#12805c"))
            painter.setPen(QColor("#ffffff"))
            painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, label)

    def _caption_line(self, painter: QPainter, option, item: GalleryItem, thumb: QRect) -> None:
        palette = option.palette
        font = self._caption(option)
        painter.setFont(font)
        fm = QFontMetrics(font)
        rect = QRect(thumb.x() + 2, thumb.bottom() + 4, thumb.width() - 4, CAPTION - 4)
        right = f"♥ {item.reactions}" if item.reactions else ""
        right_w = fm.horizontalAdvance(right) + 6 if right else 0
        user = item.username or "unknown"
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(
            rect.adjusted(0, 0, -right_w, 0),
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
            fm.elidedText(user, Qt.TextElideMode.ElideRight, rect.width() - right_w),
        )
        if right:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, right)

    # -- cached resources -------------------------------------------------------------------------

    def _pixmap(self, name: str, size: int, colour: str) -> QPixmap:
        key = (name, size, colour)
        pm = self._pixmaps.get(key)
        if pm is None:
            pm = icons.pixmap(name, size, colour)
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
